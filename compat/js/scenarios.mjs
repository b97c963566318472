#!/usr/bin/env node
// autobahn-js / wampy scenarios of the differential check (compat/run.py).
//
// usage: node scenarios.mjs --lib autobahn|wampy --url URL --serializer S [--timeout 60]
//
// Prints the result line {"ok": true, "<scenario>": <outcome>, ...}: what the client
// observed (results, error URIs and payloads, events), never a pass/fail verdict; the
// runner compares the outcomes of both routers.  COMPAT_PREFIX (env) is a fresh URI
// component per job.  The client libraries and the harness come from tests/js.

import {
  run, step, describe, isBinary, toBuffer, sha256hex, decodeJsonBinary, encodeJsonBinary, binaryPayload,
} from '../../tests/js/lib/harness.mjs';

const P = process.env.COMPAT_PREFIX || 'ptest';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function within(ms, promise) {
  let t;
  return Promise.race([promise, new Promise((_, rej) => { t = setTimeout(() => rej({ timeout: true }), ms); })])
    .finally(() => clearTimeout(t));
}

// ---- payload description (binary is compared by length + hash) -------------------------
function desc(v, json) {
  if (v === undefined) return null;
  if (isBinary(v)) { const b = toBuffer(v); return { $bytes: b.length, sha256: sha256hex(b).slice(0, 16) }; }
  if (json && typeof v === 'string') {
    const b = decodeJsonBinary(v);
    if (b !== null) return { $bytes: b.length, sha256: sha256hex(b).slice(0, 16) };
  }
  if (typeof v === 'string' && v.length > 200) return { $str: v.length, sha256: sha256hex(Buffer.from(v)).slice(0, 16) };
  if (Array.isArray(v)) return v.map((x) => desc(x, json));
  if (typeof v === 'bigint') return Number(v);
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), desc(x, json)]));
  if (v !== null && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, desc(x, json)]));
  return v;
}

// ---- one adapter per library: register/call/subscribe/publish with uniform results -----
async function autobahnAdapter(opts) {
  const { loadAutobahn, connect, disconnect } = await import('../../tests/js/lib/autobahn_client.mjs');
  const ab = await loadAutobahn('autobahn');
  const json = opts.serializer === 'json';
  const open = async (label) => {
    const conn = await connect(ab, { ...opts, label });
    const s = conn.session;
    return {
      id: s.id,
      json,
      isOpen: () => s.isOpen,
      register: (uri, fn, options) => s.register(uri, (args, kwargs, details) => {
        try {
          const r = fn(args || [], kwargs || {}, details);
          return new ab.Result(r.args, r.kwargs);
        } catch (e) {
          throw new ab.Error(e.uri, e.args, e.kwargs);
        }
      }, options),
      call: async (uri, args, kwargs, options) => {
        const r = await s.call(uri, args, kwargs, options);
        if (r instanceof ab.Result) return { args: r.args, kwargs: r.kwargs };
        return { args: [r], kwargs: {} };
      },
      subscribe: (uri, fn, options) => s.subscribe(uri, (args, kwargs, details) => fn(args || [], kwargs || {}, details || {}), options),
      unsubscribe: (sub) => s.unsubscribe(sub),
      publish: (uri, args, kwargs, options) => s.publish(uri, args, kwargs, { acknowledge: true, ...(options || {}) }),
      close: () => disconnect(conn, label),
      errorOf: (e) => (e && typeof e.error === 'string' ? { error: e.error, args: desc(e.args || [], json), kwargs: desc(e.kwargs || {}, json) } : null),
    };
  };
  return { open, binary: (b) => (json ? encodeJsonBinary(b) : b) };
}

async function wampyAdapter(opts) {
  const { connect, disconnect, SUB_OPTS } = await import('../../tests/js/lib/wampy_client.mjs');
  const json = opts.serializer === 'json';
  const open = async (label) => {
    const conn = await connect({ ...opts, label });
    const w = conn.w;
    return {
      id: w.getSessionId(),
      json,
      isOpen: () => w.getSessionId() !== null && w.getSessionId() !== undefined,
      register: (uri, fn, options) => w.register(uri, ({ argsList, argsDict, details }) => {
        try {
          const r = fn(argsList || [], argsDict || {}, details);
          return { argsList: r.args, argsDict: r.kwargs };
        } catch (e) {
          const err = new Error(e.uri);
          Object.assign(err, { error: e.uri, argsList: e.args, argsDict: e.kwargs });
          throw err;
        }
      }, options),
      call: async (uri, args, kwargs, options) => {
        const r = await w.call(uri, kwargs && Object.keys(kwargs).length ? { argsList: args || [], argsDict: kwargs } : { argsList: args || [] }, options);
        return { args: r.argsList || [], kwargs: r.argsDict || {} };
      },
      subscribe: (uri, fn, options) => w.subscribe(uri, ({ argsList, argsDict, details }) => fn(argsList || [], argsDict || {}, details || {}), { ...SUB_OPTS, ...(options || {}) }),
      unsubscribe: (sub) => w.unsubscribe(sub.subscriptionId ?? sub),
      publish: (uri, args, kwargs, options) => w.publish(uri, kwargs && Object.keys(kwargs).length ? { argsList: args || [], argsDict: kwargs } : (args ? { argsList: args } : null), { acknowledge: true, ...(options || {}) }),
      close: () => disconnect(conn),
      errorOf: (e) => {
        const uri = e && (e.errorUri || e.error);
        return typeof uri === 'string' ? { error: uri, args: desc(e.argsList || [], json), kwargs: desc(e.argsDict || {}, json) } : null;
      },
    };
  };
  return { open, binary: (b) => b };
}

async function outcome(s, fn, ms = 3000) {
  try {
    const r = await within(ms, (async () => fn())());
    return { ok: r === undefined ? null : r };
  } catch (e) {
    if (e && e.timeout) return { exception: 'timeout' };
    const err = s.errorOf(e);
    if (err) return err;
    return { exception: (e && (e.name || e.constructor && e.constructor.name)) || String(e) };
  }
}
const okOnly = (o) => ('ok' in o ? 'ok' : o);

// ---- scenarios -------------------------------------------------------------------------
const URI_FORMS = {
  camelCase: `compat.${P}.camelCase.procName`,
  hyphen: `compat.${P}.with-hyphen.x-y`,
  digits: `compat.${P}.v2.123`,
  leading_digit: `compat.${P}.1abc`,
  upper: `compat.${P}.UPPER.Case`,
  underscore: `compat.${P}.snake_case`,
  empty_component: `compat.${P}..x`,
  trailing_dot: `compat.${P}.x.`,
  space: `compat.${P}.has space`,
  hash: `compat.${P}.has#hash`,
};

async function scUriForms(adapter, out) {
  // each form on a session of its own: a router may end the session over an invalid URI
  for (const [name, uri] of Object.entries(URI_FORMS)) {
    step(`uri ${name}`);
    const s = await adapter.open(`uri-${name}`);
    out[`uri.${name}.register`] = okOnly(await outcome(s, () => s.register(uri, (args) => ({ args: ['got', ...args] }))));
    const call = await outcome(s, () => s.call(uri, [1]));
    out[`uri.${name}.call`] = 'ok' in call ? { ok: desc(call.ok, s.json) } : call;
    const events = [];
    const sub = await outcome(s, () => s.subscribe(uri, (args) => events.push(desc(args, s.json))));
    out[`uri.${name}.subscribe`] = okOnly(sub);
    out[`uri.${name}.publish`] = okOnly(await outcome(s, () => s.publish(uri, [1], {}, { exclude_me: false })));
    await sleep('ok' in sub ? 300 : 0);
    out[`uri.${name}.events`] = events;
    out[`uri.${name}.session`] = s.isOpen() ? 'attached' : 'lost';
    if (s.isOpen()) {
      try { await within(3000, s.close()); } catch (e) { /* closing is not under test */ }
    }
  }
}

async function scPatterns(s, out) {
  const base = `compat.${P}`;
  const subs = {
    prefix: [`${base}.pfx`, 'prefix'],
    wildcard: [`${base}.wc..end`, 'wildcard'],
    wildcard_first: [`${base}..first`, 'wildcard'],
    prefix_empty_component: [`${base}..x`, 'prefix'],
  };
  const events = {};
  for (const [name, [uri, match]] of Object.entries(subs)) {
    events[name] = [];
    out[`patterns.subscribe.${name}`] = okOnly(await outcome(s, () => s.subscribe(uri, (args, kw, d) => events[name].push({ args: desc(args, s.json), topic: d.topic }), { match })));
  }
  const pubs = [`${base}.pfx`, `${base}.pfx.a.b`, `${base}.pfxnot`, `${base}.wc.mid.end`, `${base}.wc.end`, `${base}.a.first`];
  for (const [i, uri] of pubs.entries()) {
    out[`patterns.publish.${uri.slice(base.length + 1)}`] = okOnly(await outcome(s, () => s.publish(uri, [i], {}, { exclude_me: false })));
  }
  await sleep(500);
  for (const [name, ev] of Object.entries(events)) {
    out[`patterns.events.${name}`] = ev.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b)));
  }
  const regs = {
    exact: [`${base}.rpc.a.op`, 'exact'],
    prefix: [`${base}.rpc.a`, 'prefix'],
    wildcard: [`${base}.rpc..op`, 'wildcard'],
  };
  for (const [name, [uri, match]] of Object.entries(regs)) {
    out[`patterns.register.${name}`] = okOnly(await outcome(s, () => s.register(uri, (args, kw, d) => ({ args: [name, (d && d.procedure) || null] }), { match })));
  }
  for (const uri of [`${base}.rpc.a.op`, `${base}.rpc.a.other`, `${base}.rpc.b.op`, `${base}.none`]) {
    const o = await outcome(s, () => s.call(uri, []));
    out[`patterns.call.${uri.slice(base.length + 1)}`] = 'ok' in o ? { ok: desc(o.ok, s.json) } : o;
  }
}

async function scRpc(s, out) {
  const base = `compat.${P}`;
  const call = async (uri, args, kwargs) => {
    const o = await outcome(s, () => s.call(uri, args, kwargs));
    return 'ok' in o ? { ok: desc(o.ok, s.json) } : o;
  };
  out['rpc.container.hello'] = await call('compat.container.hello', ['compat']);
  out['rpc.container.kwargs'] = await call('compat.container.hello', [], { who: 'kw' });
  out['rpc.container.fail'] = await call('compat.container.fail', []);
  out['rpc.container.fail_bare'] = await call('compat.container.fail_bare', []);
  out['rpc.container.caller_details'] = await call('compat.container.caller_details', []);
  out['rpc.guest.hello'] = await call('compat.guest.hello', ['compat']);
  out['rpc.no_such_procedure'] = await call(`${base}.nothing.here`, []);
  await s.register(`${base}.fail`, () => { throw { uri: 'compat.error.own', args: ['own failure', { a: [1, null] }], kwargs: { code: 7 } }; });
  out['rpc.own.fail'] = await call(`${base}.fail`, []);
  out['rpc.register_twice'] = okOnly(await outcome(s, () => s.register(`${base}.fail`, () => ({ args: [] }))));
}

async function scPayloads(s, out, binary) {
  const b = binaryPayload();
  const call = async (uri, args, kwargs, ms) => {
    const o = await outcome(s, () => s.call(uri, args, kwargs), ms);
    return 'ok' in o ? { ok: desc(o.ok, s.json) } : o;
  };
  out['payload.binary_args'] = await call('compat.container.echo', [binary(b), [binary(b)]], { b: binary(b) });
  out['payload.make_bytes'] = await call('compat.container.make_bytes', [100000]);
  const values = [0, -1, 2 ** 31, 2 ** 53, 1.5, true, false, null, '', 'üñíçødé ✓ 😀', [], {}, { nested: { deep: [1, [2, [3]]] } }];
  out['payload.values'] = await call('compat.container.echo', values, { k: values });
  for (const size of [100000, 1000000, 1900000, 3000000]) {
    out[`payload.string_${size}`] = await call('compat.container.echo', ['x'.repeat(size)], {}, 20000);
    if (!s.isOpen()) { out[`payload.string_${size}.session`] = 'lost'; return; }
  }
}

async function scPubsub(s, out, adapter) {
  const base = `compat.${P}.ps`;
  const events = [];
  await s.subscribe(`${base}.t`, (args, kwargs, d) => events.push({ args: desc(args, s.json), kwargs: desc(kwargs, s.json), publisher: d.publisher !== undefined }));
  out['pubsub.publish.default'] = okOnly(await outcome(s, () => s.publish(`${base}.t`, [1])));
  out['pubsub.publish.args_kwargs'] = okOnly(await outcome(s, () => s.publish(`${base}.t`, [2, 'two', [3]], { k: { v: null } }, { exclude_me: false })));
  out['pubsub.publish.eligible_me'] = okOnly(await outcome(s, () => s.publish(`${base}.t`, [5], {}, { exclude_me: false, eligible: [s.id] })));
  out['pubsub.publish.exclude_me_by_id'] = okOnly(await outcome(s, () => s.publish(`${base}.t`, [4], {}, { exclude_me: false, exclude: [s.id] })));
  await sleep(500);
  out['pubsub.events'] = events;
  const s2 = await adapter.open('second');
  const ev2 = [];
  await s2.subscribe(`${base}.u`, (args) => ev2.push(desc(args, s.json)));
  await s.publish(`${base}.u`, ['to-s2']);
  await sleep(300);
  out['pubsub.second_session'] = ev2;
  await s2.close();
}

async function scMeta(s, out) {
  const call = async (uri, args) => {
    const o = await outcome(s, () => s.call(uri, args));
    return 'ok' in o ? { ok: desc(o.ok, s.json) } : o;
  };
  out['meta.session.count_backend'] = await call('wamp.session.count', [['backend']]);
  const g = await call('wamp.session.get', [s.id]);
  out['meta.session.get_own'] = 'ok' in g && g.ok.args ? { authrole: g.ok.args[0].authrole, authmethod: g.ok.args[0].authmethod, keys: Object.keys(g.ok.args[0]).sort() } : g;
  out['meta.session.get_unknown'] = await call('wamp.session.get', [424242]);
  out['meta.registration.lookup_unknown'] = await call('wamp.registration.lookup', [`compat.${P}.nope`]);
}

run(async (opts) => {
  const adapter = opts.lib === 'wampy' ? await wampyAdapter(opts) : await autobahnAdapter(opts);
  const out = {};
  let s = await adapter.open('main');
  const scenarios = [
    ['uri_forms', () => scUriForms(adapter, out)],
    ['patterns', () => scPatterns(s, out)],
    ['rpc', () => scRpc(s, out)],
    ['pubsub', () => scPubsub(s, out, adapter)],
    ['meta', () => scMeta(s, out)],
    ['payloads', () => scPayloads(s, out, adapter.binary)],
  ];
  for (const [name, fn] of scenarios) {
    if (!s.isOpen()) {
      s = await adapter.open('main');
      out[`${name}.reconnected`] = true;
    }
    try {
      await within(60000, fn());
    } catch (e) {
      out[`${name}.aborted`] = { exception: (e && (e.timeout ? 'timeout' : e.name || e.error || e.errorUri)) || String(e) };
    }
  }
  if (s.isOpen()) {
    try { await within(3000, s.close()); } catch (e) { /* closing is not under test */ }
  }
  return out;
}, { timeout: 120 });
