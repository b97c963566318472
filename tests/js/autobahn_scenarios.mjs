#!/usr/bin/env node
// Interop scenarios run by autobahn-js (npm "autobahn") against a WAMP router.
//
// usage: node autobahn_scenarios.mjs --url ws://127.0.0.1:8080/ws --realm realm1 \
//            --serializer json|msgpack|cbor --lib autobahn|autobahn26 \
//            --scenario pubsub|rpc|app_error|binary|no_such_procedure|not_authorized
// (or env WAMP_URL, WAMP_REALM, WAMP_SERIALIZER, WAMP_LIB, WAMP_SCENARIO)
//
// --url may also be rs://host:port (RawSocket over TCP) or rs+unix:///path
// (RawSocket over a Unix socket): autobahn-js's Node RawSocket transport,
// JSON only.
//
// For not_authorized, --url must be the router's restricted transport
// (anonymous role "restricted": may call/subscribe under com.public. only).
//
// Prints one JSON line: {"ok": true, ...observations} and exits 0, or
// {"ok": false, "error": ..., "step": ...} and exits non-zero.

import {
  run, step, check, describe, sameValue, uniqueSuffix, within, deferred, isBinary, toBuffer,
  typeName, binaryPayload, encodeJsonBinary, decodeJsonBinary, describeError,
} from './lib/harness.mjs';
import { loadAutobahn, clientInfo, connect, disconnect } from './lib/autobahn_client.mjs';

const PUB_ARGS = [1, 'two', 3.5, true, null, { nested: [1, 2, { deep: 'x' }] }, 'üñíçødé ✓'];
const PUB_KWARGS = { a: 1, b: [true, false, null], s: 'str', n: -42, big: 2 ** 40, obj: { k: 'v' } };

/** The error URI of a rejected WAMP action, or 'ok' when it succeeded. */
async function outcome(promise) {
  try {
    await promise;
    return 'ok';
  } catch (e) {
    if (e && typeof e.error === 'string') return e.error;
    return `non-WAMP error: ${describeError(e)}`;
  }
}

const scenarios = {
  // Two sessions: A subscribes, B publishes with args/kwargs and acknowledge.
  async pubsub(ab, opts, base) {
    const topic = `${base}.topic`;
    const a = await connect(ab, { ...opts, label: 'subscriber' });
    const b = await connect(ab, { ...opts, label: 'publisher' });
    const gotA = deferred();
    const gotB = deferred();
    const eventsB = [];
    step('subscribe A');
    const subA = await within(5000, a.session.subscribe(topic, (args, kwargs, details) => {
      gotA.resolve({ args, kwargs, details });
    }), 'subscribe A');
    check(subA && subA.id !== undefined, 'subscribe resolved without a subscription id', subA);
    // B subscribes too: by default the publisher is excluded from its own event.
    step('subscribe B');
    await within(5000, b.session.subscribe(topic, (args, kwargs) => {
      eventsB.push(args);
      gotB.resolve({ args, kwargs });
    }), 'subscribe B');

    step('publish B (acknowledge)');
    const pub = await within(5000, b.session.publish(topic, PUB_ARGS, PUB_KWARGS, { acknowledge: true }), 'publish');
    check(pub && typeof pub.id === 'number', 'acknowledged publish has no numeric publication id', pub);

    step('wait for event at A');
    const ev = await within(5000, gotA.promise, 'event at subscriber');
    check(sameValue(ev.args, PUB_ARGS), 'event args differ from published args', ev.args);
    check(sameValue(ev.kwargs, PUB_KWARGS), 'event kwargs differ from published kwargs', ev.kwargs);
    check(ev.details.publication === pub.id, 'event publication id differs from acknowledged id',
      { event: ev.details.publication, ack: pub.id });

    // A publishes back (A is excluded from its own event); B receives it.  The
    // router handled B's earlier publication before this one, so had B got
    // its own event it would already be in eventsB.
    step('publish A -> B');
    await within(5000, a.session.publish(topic, ['from-a'], {}, { acknowledge: true }), 'publish from A');
    const evB = await within(5000, gotB.promise, 'event at B');
    check(sameValue(evB.args, ['from-a']), 'B received an unexpected event first (own event not excluded?)', eventsB);

    const closeA = await disconnect(a, 'subscriber');
    const closeB = await disconnect(b, 'publisher');
    return {
      protocol: a.protocol,
      publication_id: pub.id,
      subscription_id: subA.id,
      received: { args: describe(ev.args), kwargs: describe(ev.kwargs) },
      event_details_publication: ev.details.publication,
      publisher_events: describe(eventsB),
      close: [closeA, closeB],
    };
  },

  // Callee session registers, caller session calls with args/kwargs.
  async rpc(ab, opts, base) {
    const callee = await connect(ab, { ...opts, label: 'callee' });
    const caller = await connect(ab, { ...opts, label: 'caller' });
    let invocationSeen = null;
    step('register');
    const reg = await within(5000, callee.session.register(`${base}.add2`, (args, kwargs, details) => {
      invocationSeen = { args, kwargs, procedure: details.procedure };
      return new ab.Result([args[0] + args[1]], { sum: args[0] + args[1], echo: kwargs });
    }), 'register add2');
    check(reg && reg.id !== undefined, 'register resolved without a registration id', reg);
    await within(5000, callee.session.register(`${base}.single`, () => 42), 'register single');
    await within(5000, callee.session.register(`${base}.async`, async (args) => {
      await new Promise((r) => setTimeout(r, 50));
      return new ab.Result(args.slice().reverse(), {});
    }), 'register async');

    step('call add2');
    const res = await within(5000, caller.session.call(`${base}.add2`, [2, 3], { x: 'y', list: [1, 2] }), 'call add2');
    check(res instanceof ab.Result, `complex result should be an autobahn.Result, got ${typeName(res)}`, res);
    check(sameValue(res.args, [5]), 'add2 result args', res.args);
    check(sameValue(res.kwargs, { sum: 5, echo: { x: 'y', list: [1, 2] } }), 'add2 result kwargs', res.kwargs);
    check(invocationSeen && sameValue(invocationSeen.args, [2, 3]), 'callee saw wrong args', invocationSeen);

    step('call single');
    const single = await within(5000, caller.session.call(`${base}.single`), 'call single');
    check(single === 42, 'single-value result', single);

    step('call async');
    const asyncRes = await within(5000, caller.session.call(`${base}.async`, [1, 2, 3]), 'call async');
    check(sameValue(asyncRes.args, [3, 2, 1]), 'async callee result', asyncRes);

    step('unregister');
    await within(5000, callee.session.unregister(reg), 'unregister');
    const afterUnreg = await outcome(caller.session.call(`${base}.add2`, [1, 1]));
    check(afterUnreg === 'wamp.error.no_such_procedure', 'call after unregister', afterUnreg);

    const close = [await disconnect(caller, 'caller'), await disconnect(callee, 'callee')];
    return {
      protocol: caller.protocol,
      registration_id: reg.id,
      result: { args: describe(res.args), kwargs: describe(res.kwargs) },
      invocation: describe(invocationSeen),
      single,
      async_result: describe(asyncRes.args),
      after_unregister: afterUnreg,
      close,
    };
  },

  // The callee throws an application error; the caller gets URI/args/kwargs.
  async app_error(ab, opts, base) {
    const callee = await connect(ab, { ...opts, label: 'callee' });
    const caller = await connect(ab, { ...opts, label: 'caller' });
    step('register');
    await within(5000, callee.session.register(`${base}.fail`, () => {
      throw new ab.Error('com.myapp.error.custom', [1, 2], { foo: 'bar' });
    }), 'register fail');
    await within(5000, callee.session.register(`${base}.fail_async`, async () => {
      await new Promise((r) => setTimeout(r, 20));
      throw new ab.Error('com.myapp.error.async', ['later'], {});
    }), 'register fail_async');

    step('call fail');
    let err = null;
    try {
      const r = await within(5000, caller.session.call(`${base}.fail`, [], {}), 'call fail');
      throw new Error(`call of a failing procedure succeeded with ${JSON.stringify(describe(r))}`);
    } catch (e) {
      err = e;
    }
    check(err instanceof ab.Error, `caller should get an autobahn.Error, got ${describeError(err)}`);
    check(err.error === 'com.myapp.error.custom', 'error URI', err.error);
    check(sameValue(err.args, [1, 2]), 'error args', err.args);
    check(sameValue(err.kwargs, { foo: 'bar' }), 'error kwargs', err.kwargs);

    step('call fail_async');
    let err2 = null;
    try {
      await within(5000, caller.session.call(`${base}.fail_async`), 'call fail_async');
    } catch (e) {
      err2 = e;
    }
    check(err2 && err2.error === 'com.myapp.error.async', 'async error URI', err2);
    check(sameValue(err2.args, ['later']), 'async error args', err2.args);

    const close = [await disconnect(caller, 'caller'), await disconnect(callee, 'callee')];
    return {
      protocol: caller.protocol,
      error: { uri: err.error, args: describe(err.args), kwargs: describe(err.kwargs) },
      async_error: { uri: err2.error, args: describe(err2.args), kwargs: describe(err2.kwargs) },
      close,
    };
  },

  // Binary values in args/kwargs through RPC and PubSub.  msgpack/cbor carry
  // bytes natively; autobahn-js's JSON serializer has no binary support, so
  // for json the WAMP convention ("\u0000" + base64 string) is applied by hand.
  async binary(ab, opts, base) {
    const native = opts.serializer !== 'json';
    const payload = binaryPayload();
    const small = new Uint8Array([1, 2, 3, 0, 255]);
    const wire = native ? (b) => b : (b) => encodeJsonBinary(b);
    const unwire = native ? (v) => (isBinary(v) ? toBuffer(v) : null) : (v) => decodeJsonBinary(v);

    const callee = await connect(ab, { ...opts, label: 'callee' });
    const caller = await connect(ab, { ...opts, label: 'caller' });
    let seen = null;
    step('register echo');
    await within(5000, callee.session.register(`${base}.echo`, (args, kwargs) => {
      seen = { types: args.map(typeName), kw_types: Object.fromEntries(Object.entries(kwargs).map(([k, v]) => [k, typeName(v)])) };
      return new ab.Result(args, kwargs);
    }), 'register echo');

    step('call echo');
    const res = await within(5000, caller.session.call(
      `${base}.echo`, [wire(payload), wire(small), 'text'], { blob: wire(Buffer.from('kw-bytes')) },
    ), 'call echo');
    const back0 = unwire(res.args[0]);
    const back1 = unwire(res.args[1]);
    const backKw = unwire(res.kwargs.blob);
    check(back0 !== null && back0.equals(payload), 'echoed Buffer differs', res.args[0]);
    check(back1 !== null && back1.equals(Buffer.from(small)), 'echoed Uint8Array differs', res.args[1]);
    check(res.args[2] === 'text', 'echoed string differs', res.args[2]);
    check(backKw !== null && backKw.toString() === 'kw-bytes', 'echoed kwargs bytes differ', res.kwargs.blob);

    step('pubsub binary');
    const sub = await connect(ab, { ...opts, label: 'subscriber' });
    const got = deferred();
    await within(5000, sub.session.subscribe(`${base}.bin`, (args, kwargs) => got.resolve({ args, kwargs })), 'subscribe');
    await within(5000, caller.session.publish(`${base}.bin`, [wire(payload)], { b: wire(small) }, { acknowledge: true }), 'publish');
    const ev = await within(5000, got.promise, 'binary event');
    const evBytes = unwire(ev.args[0]);
    const evKw = unwire(ev.kwargs.b);
    check(evBytes !== null && evBytes.equals(payload), 'event bytes differ', ev.args[0]);
    check(evKw !== null && evKw.equals(Buffer.from(small)), 'event kwargs bytes differ', ev.kwargs.b);

    const close = [
      await disconnect(sub, 'subscriber'), await disconnect(caller, 'caller'), await disconnect(callee, 'callee'),
    ];
    return {
      protocol: caller.protocol,
      binary_mode: native ? 'native' : 'json-nul-base64-convention',
      callee_saw: seen,
      result_types: res.args.map(typeName),
      event_types: ev.args.map(typeName),
      echoed_hex: back0.toString('hex'),
      close,
    };
  },

  // Calling a procedure nobody registered.
  async no_such_procedure(ab, opts, base) {
    const caller = await connect(ab, { ...opts, label: 'caller' });
    step('call unknown');
    let err = null;
    try {
      const r = await within(5000, caller.session.call(`${base}.nobody_registered_this`, [1], { a: 1 }), 'call unknown');
      throw new Error(`call of an unknown procedure succeeded: ${JSON.stringify(describe(r))}`);
    } catch (e) {
      err = e;
    }
    check(err instanceof ab.Error, `expected an autobahn.Error, got ${describeError(err)}`);
    check(err.error === 'wamp.error.no_such_procedure', 'error URI', err.error);
    // The session stays usable after the error.
    step('session still usable');
    await within(5000, caller.session.register(`${base}.now_exists`, () => 'yes'), 'register after error');
    const r = await within(5000, caller.session.call(`${base}.now_exists`), 'call own procedure');
    check(r === 'yes', 'call own procedure', r);
    const close = await disconnect(caller, 'caller');
    return { protocol: caller.protocol, error: err.error, error_args: describe(err.args), close };
  },

  // Against the restricted transport: role "restricted" may call/subscribe
  // under com.public. (no publish/register there), nothing else.
  async not_authorized(ab, opts, base) {
    const s = await connect(ab, { ...opts, label: 'restricted' });
    const ses = s.session;
    const suffix = base.split('.').pop();
    const results = {};
    step('publish com.other.topic');
    results.publish_other = await outcome(within(5000, ses.publish('com.other.topic', [1], { k: 'v' }, { acknowledge: true }), 'publish other'));
    step('call com.other.proc');
    results.call_other = await outcome(within(5000, ses.call(`com.other.proc.${suffix}`, [1]), 'call other'));
    step('subscribe com.other.topic');
    results.subscribe_other = await outcome(within(5000, ses.subscribe('com.other.topic', () => {}), 'subscribe other'));
    step('register com.public.*');
    results.register_public = await outcome(within(5000, ses.register(`com.public.proc.${suffix}`, () => 1), 'register public'));
    step('publish com.public.*');
    results.publish_public = await outcome(within(5000, ses.publish(`com.public.topic.${suffix}`, [1], {}, { acknowledge: true }), 'publish public'));
    step('subscribe com.public.*');
    results.subscribe_public = await outcome(within(5000, ses.subscribe(`com.public.topic.${suffix}`, () => {}), 'subscribe public'));
    step('call com.public.* (unregistered)');
    results.call_public_unregistered = await outcome(within(5000, ses.call(`com.public.nothing.${suffix}`), 'call public'));

    const expected = {
      publish_other: 'wamp.error.not_authorized',
      call_other: 'wamp.error.not_authorized',
      subscribe_other: 'wamp.error.not_authorized',
      register_public: 'wamp.error.not_authorized',
      publish_public: 'wamp.error.not_authorized',
      subscribe_public: 'ok',
      call_public_unregistered: 'wamp.error.no_such_procedure',
    };
    for (const [k, v] of Object.entries(expected)) {
      check(results[k] === v, `${k}: expected ${v}, got ${results[k]}`, results);
    }
    const close = await disconnect(s, 'restricted');
    return { protocol: s.protocol, authrole: s.details.authrole, authmethod: s.details.authmethod, results, close };
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
  const base = opts.prefix ?? `com.interop.${lib}.${opts.serializer}.${scenario}.${uniqueSuffix()}`;
  const result = await scenarios[scenario](ab, opts, base);
  // every session must have negotiated the serializer asked for
  check(result.protocol === `wamp.2.${opts.serializer}`,
    `negotiated WebSocket subprotocol ${result.protocol}, expected wamp.2.${opts.serializer}`);
  return { scenario, serializer: opts.serializer, ...clientInfo(ab, lib, opts.url), ...result };
});
