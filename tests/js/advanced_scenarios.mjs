#!/usr/bin/env node
// WAMP Advanced Profile scenarios run by autobahn-js (npm "autobahn" / "autobahn26").
//
// usage: node advanced_scenarios.mjs --url ws://127.0.0.1:8080/ws --realm realm1 \
//            --serializer json|msgpack|cbor --lib autobahn|autobahn26 \
//            --scenario progressive|pattern_sub|meta|disclose [--prefix P]
//
//   progressive  calls P.stream(3) with receive_progress; P.stream is registered by the
//                test (autobahn-python: it announces call_canceling, which autobahn-js
//                callees do not, and the spec lets a dealer ignore progressive results of
//                such callees).  Expects progress 0, 1, 2 and the final "done".
//   pattern_sub  prefix and wildcard subscriptions: EVENT.Details.topic (details.topic).
//   meta         wamp.session.count/list/get, wamp.session.on_join.
//   disclose     caller (disclose_me) and publisher (disclose_me) identification; with env
//                WAMP_DISCLOSE_URL (a transport whose role has disclose.caller/publisher)
//                also the role-based disclosure.
//
// Progressive results: autobahn-js delivers them with deferred.notify(), which its ES6
// promise factory (use_es6_promises) does not have -- a progressive RESULT then throws
// inside the session.  This script passes its own deferred factory (use_deferred) whose
// promise has .onProgress(fn).
//
// Prints one JSON line: {"ok": true, ...observations} or {"ok": false, "error": ...}.

import { run, step, check, sameValue, uniqueSuffix, within, deferred } from './lib/harness.mjs';
import { loadAutobahn, clientInfo, transportOptions } from './lib/autobahn_client.mjs';

function progressDeferred() {
  const d = {};
  let onProgress = null;
  const early = [];
  d.promise = new Promise((resolve, reject) => {
    d.resolve = resolve;
    d.reject = reject;
  });
  d.notify = (v) => (onProgress ? onProgress(v) : early.push(v));
  d.promise.onProgress = (fn) => {
    onProgress = fn;
    early.splice(0).forEach(fn);
    return d.promise;
  };
  return d;
}

async function connect(ab, { url, realm, serializer, label = 'session' }) {
  const joined = deferred();
  const closed = deferred();
  let opened = false;
  const connection = new ab.Connection({
    ...transportOptions(ab, url, serializer),
    realm,
    max_retries: 0,
    retry_if_unreachable: false,
    use_deferred: progressDeferred,
    on_user_error: (e, m) => process.stderr.write(`[${label}] user error: ${m} ${e && e.stack}\n`),
    on_internal_error: (e, m) => process.stderr.write(`[${label}] internal error: ${m} ${e && e.stack}\n`),
  });
  connection.onopen = (session, details) => {
    opened = true;
    joined.resolve({ session, details });
  };
  connection.onclose = (reason, details) => {
    if (!opened) joined.reject(new Error(`[${label}] could not join ${url}: ${reason} ${JSON.stringify(details)}`));
    closed.resolve({ reason, details });
    return true;
  };
  step(`${label}: connect+join`);
  connection.open();
  const { session, details } = await within(10000, joined.promise, `[${label}] join`);
  const protocol = details && details.transport && details.transport.protocol;
  return { session, details, connection, closed: closed.promise, protocol };
}

async function disconnect(conn, label = 'session') {
  step(`${label}: close`);
  conn.connection.close('wamp.close.normal', 'done');
  const { reason } = await within(5000, conn.closed, `[${label}] close`);
  return reason;
}

const scenarios = {
  async progressive(ab, opts, base) {
    check(opts.prefix, '--prefix (the procedure base registered by the test) is required');
    const c = await connect(ab, { ...opts, label: 'caller' });
    const progress = [];
    step('call with receive_progress');
    const result = await within(5000, c.session.call(`${opts.prefix}.stream`, [3], {}, { receive_progress: true })
      .onProgress((v) => progress.push(v)), 'progressive call');
    check(sameValue(progress, [0, 1, 2]), 'progressive results differ', progress);
    check(result === 'done', 'final result differs', result);
    step('call without receive_progress');
    const plain = [];
    const result2 = await within(5000, c.session.call(`${opts.prefix}.stream`, [2])
      .onProgress((v) => plain.push(v)), 'plain call');
    check(plain.length === 0 && result2 === 'done', 'a caller without receive_progress got progress', plain);
    const close = await disconnect(c, 'caller');
    return { protocol: c.protocol, progress, result, close };
  },

  async pattern_sub(ab, opts, base) {
    const sub = await connect(ab, { ...opts, label: 'subscriber' });
    const pub = await connect(ab, { ...opts, label: 'publisher' });
    const got = { prefix: [], wildcard: [], exact: [] };
    const done = deferred();
    const handler = (kind) => (args, kwargs, details) => {
      got[kind].push({ args, topic: details.topic ?? null, publication: details.publication });
      if (got.prefix.length >= 2 && got.wildcard.length >= 1 && got.exact.length >= 1) done.resolve();
    };
    step('subscribe prefix/wildcard/exact');
    await within(5000, sub.session.subscribe(`${base}.`, handler('prefix'), { match: 'prefix' }), 'subscribe prefix');
    await within(5000, sub.session.subscribe(`${base}..temp`, handler('wildcard'), { match: 'wildcard' }), 'subscribe wildcard');
    await within(5000, sub.session.subscribe(`${base}.room1.temp`, handler('exact')), 'subscribe exact');
    step('publish');
    const p1 = await within(5000, pub.session.publish(`${base}.room1.temp`, [21.5], {}, { acknowledge: true }), 'publish 1');
    const p2 = await within(5000, pub.session.publish(`${base}.room2.humidity`, [40], {}, { acknowledge: true }), 'publish 2');
    await within(5000, done.promise, 'events');
    check(sameValue(got.prefix.map((e) => e.topic), [`${base}.room1.temp`, `${base}.room2.humidity`]),
      'prefix subscription: details.topic wrong', got.prefix);
    check(got.wildcard.length === 1 && got.wildcard[0].topic === `${base}.room1.temp`,
      'wildcard subscription: details.topic wrong', got.wildcard);
    check(got.exact[0].publication === p1.id && got.wildcard[0].publication === p1.id
      && got.prefix[0].publication === p1.id && got.prefix[1].publication === p2.id,
    'publication ids differ across subscriptions', got);
    const close = [await disconnect(sub, 'subscriber'), await disconnect(pub, 'publisher')];
    return { protocol: sub.protocol, events: got, close };
  },

  async meta(ab, opts, base) {
    const a = await connect(ab, { ...opts, label: 'a' });
    const joins = [];
    await within(5000, a.session.subscribe('wamp.session.on_join', (args) => joins.push(args[0])), 'subscribe on_join');
    const b = await connect(ab, { ...opts, label: 'b' });
    step('wamp.session.count/list/get');
    const count = await within(5000, a.session.call('wamp.session.count'), 'count');
    const list = await within(5000, a.session.call('wamp.session.list'), 'list');
    const info = await within(5000, a.session.call('wamp.session.get', [b.session.id]), 'get');
    check(Array.isArray(list) && list.includes(a.session.id) && list.includes(b.session.id), 'session.list lacks our sessions', list);
    check(count === list.length, 'session.count != len(session.list)', { count, list });
    check(info.session === b.session.id && info.authrole === b.details.authrole && info.authid === b.details.authid,
      'session.get returned other details', info);
    let noSuch = 'ok';
    try {
      await a.session.call('wamp.session.get', [4242424242]);
    } catch (e) {
      noSuch = e.error;
    }
    check(noSuch === 'wamp.error.no_such_session', 'session.get of an unknown session', noSuch);
    step('on_join event');
    for (let i = 0; i < 200 && !joins.some((d) => d.session === b.session.id); i++) {
      await new Promise((r) => setTimeout(r, 10));
    }
    const join = joins.find((d) => d.session === b.session.id);
    check(join && join.authrole === b.details.authrole, 'no wamp.session.on_join for the second session', joins);
    const close = [await disconnect(b, 'b'), await disconnect(a, 'a')];
    return { protocol: a.protocol, count, list_len: list.length, info, no_such: noSuch, close };
  },

  async disclose(ab, opts, base) {
    const callee = await connect(ab, { ...opts, label: 'callee' });
    const caller = await connect(ab, { ...opts, label: 'caller' });
    const proc = `${base}.whoami`;
    step('register');
    await within(5000, callee.session.register(proc, (args, kwargs, details) =>
      [details.caller ?? null, details.caller_authid ?? null, details.caller_authrole ?? null]), 'register');
    step('call disclose_me');
    const disclosed = await within(5000, caller.session.call(proc, [], {}, { disclose_me: true }), 'call disclose_me');
    const hidden = await within(5000, caller.session.call(proc), 'call');
    check(sameValue(disclosed, [caller.session.id, caller.details.authid, caller.details.authrole]),
      'INVOCATION.Details.caller* with disclose_me', disclosed);
    check(sameValue(hidden, [null, null, null]), 'caller disclosed without disclose_me', hidden);
    step('publish disclose_me');
    const got = deferred();
    await within(5000, callee.session.subscribe(`${base}.topic`, (args, kwargs, details) =>
      got.resolve([details.publisher ?? null, details.publisher_authid ?? null, details.publisher_authrole ?? null])), 'subscribe');
    await within(5000, caller.session.publish(`${base}.topic`, [1], {}, { acknowledge: true, disclose_me: true }), 'publish');
    const publisher = await within(5000, got.promise, 'event');
    check(sameValue(publisher, [caller.session.id, caller.details.authid, caller.details.authrole]),
      'EVENT.Details.publisher* with disclose_me', publisher);
    let byRole = null;
    const roleUrl = process.env.WAMP_DISCLOSE_URL;
    if (roleUrl) {
      step('call from a role with disclose.caller');
      const c2 = await connect(ab, { ...opts, url: roleUrl, label: 'caller-by-role' });
      byRole = await within(5000, c2.session.call(proc), 'call by role');
      check(sameValue(byRole, [c2.session.id, c2.details.authid, c2.details.authrole]),
        'role-based disclose.caller: INVOCATION.Details.caller*', byRole);
      await disconnect(c2, 'caller-by-role');
    }
    const close = [await disconnect(caller, 'caller'), await disconnect(callee, 'callee')];
    return { protocol: caller.protocol, disclosed, hidden, publisher, by_role: byRole, close };
  },
};

run(async (opts) => {
  const lib = opts.lib ?? 'autobahn';
  const scenario = opts.scenario;
  if (!scenarios[scenario]) {
    throw new Error(`unknown scenario '${scenario}' (one of ${Object.keys(scenarios).join(', ')})`);
  }
  step('load autobahn');
  const ab = await loadAutobahn(lib);
  const base = `com.adv.js.${lib}.${opts.serializer}.${scenario}.${uniqueSuffix()}`;
  const result = await scenarios[scenario](ab, opts, base);
  check(result.protocol === `wamp.2.${opts.serializer}`,
    `negotiated WebSocket subprotocol ${result.protocol}, expected wamp.2.${opts.serializer}`);
  return { scenario, serializer: opts.serializer, ...clientInfo(ab, lib, opts.url), ...result };
});
