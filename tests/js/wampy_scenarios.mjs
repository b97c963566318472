#!/usr/bin/env node
// Interop scenarios run by Wampy.js (npm "wampy") against a WAMP router.
//
// usage: node wampy_scenarios.mjs --url ws://127.0.0.1:8080/ws --realm realm1 \
//            --serializer json|msgpack|cbor \
//            --scenario pubsub|rpc|app_error|binary|no_such_procedure|not_authorized
// (or env WAMP_URL, WAMP_REALM, WAMP_SERIALIZER, WAMP_SCENARIO)
//
// On Node, Wampy needs a WebSocket class: the `ws` package is passed in.
// Serializers: wampy's own JsonSerializer, MsgpackSerializer (msgpackr) and
// CborSerializer (cbor-x).
//
// Prints one JSON line: {"ok": true, ...observations} and exits 0, or
// {"ok": false, "error": ..., "step": ...} and exits non-zero.

import {
  run, step, check, describe, sameValue, uniqueSuffix, within, deferred, isBinary, toBuffer,
  typeName, binaryPayload, encodeJsonBinary, decodeJsonBinary, describeError,
} from './lib/harness.mjs';
import { SUB_OPTS, clientInfo, connect, disconnect } from './lib/wampy_client.mjs';

const PUB_ARGS = [1, 'two', 3.5, true, null, { nested: [1, 2, { deep: 'x' }] }, 'üñíçødé ✓'];
const PUB_KWARGS = { a: 1, b: [true, false, null], s: 'str', n: -42, big: 2 ** 40, obj: { k: 'v' } };

/** WAMP IDs arrive as number (json) or BigInt (64-bit ints from msgpackr/cbor-x). */
function isId(v) {
  return (typeof v === 'number' && Number.isInteger(v)) || typeof v === 'bigint';
}

function idValue(v) {
  return typeof v === 'bigint' ? Number(v) : v;
}

/** An application error as Wampy's callee error handler expects it. */
class AppError extends Error {
  constructor(uri, argsList, argsDict, details) {
    super(uri);
    this.error = uri;
    this.argsList = argsList;
    this.argsDict = argsDict;
    this.details = details;
  }
}

/** The error URI of a rejected WAMP action, or 'ok' when it succeeded. */
async function outcome(promise) {
  try {
    await promise;
    return 'ok';
  } catch (e) {
    if (e && typeof e.errorUri === 'string') return e.errorUri;
    return `non-WAMP error: ${describeError(e)}`;
  }
}

const scenarios = {
  async pubsub(opts, base) {
    const topic = `${base}.topic`;
    const a = await connect({ ...opts, label: 'subscriber' });
    const b = await connect({ ...opts, label: 'publisher' });
    const gotA = deferred();
    const gotB = deferred();
    const eventsB = [];
    step('subscribe A');
    const subA = await within(5000, a.w.subscribe(topic, (ev) => gotA.resolve(ev), SUB_OPTS), 'subscribe A');
    check(subA && isId(subA.subscriptionId), 'subscribe resolved without a subscription id', subA);
    step('subscribe B');
    await within(5000, b.w.subscribe(topic, (ev) => {
      eventsB.push(ev.argsList);
      gotB.resolve(ev);
    }, SUB_OPTS), 'subscribe B');

    step('publish B (acknowledged)');
    const pub = await within(5000, b.w.publish(topic, { argsList: PUB_ARGS, argsDict: PUB_KWARGS }), 'publish');
    check(pub && isId(pub.publicationId), 'acknowledged publish has no numeric publication id', pub);

    step('wait for event at A');
    const ev = await within(5000, gotA.promise, 'event at subscriber');
    check(sameValue(ev.argsList, PUB_ARGS), 'event args differ from published args', ev.argsList);
    check(sameValue(ev.argsDict, PUB_KWARGS), 'event kwargs differ from published kwargs', ev.argsDict);

    step('publish A -> B');
    await within(5000, a.w.publish(topic, { argsList: ['from-a'] }), 'publish from A');
    const evB = await within(5000, gotB.promise, 'event at B');
    check(sameValue(evB.argsList, ['from-a']), 'B received an unexpected event first (own event not excluded?)', eventsB);

    const close = [await disconnect(a), await disconnect(b)];
    return {
      protocol: a.protocol,
      publication_id: idValue(pub.publicationId),
      subscription_id: idValue(subA.subscriptionId),
      id_type: typeof pub.publicationId,
      received: { args: describe(ev.argsList), kwargs: describe(ev.argsDict) },
      publisher_events: describe(eventsB),
      close,
    };
  },

  async rpc(opts, base) {
    const callee = await connect({ ...opts, label: 'callee' });
    const caller = await connect({ ...opts, label: 'caller' });
    let invocationSeen = null;
    step('register');
    const reg = await within(5000, callee.w.register(`${base}.add2`, ({ argsList, argsDict }) => {
      invocationSeen = { args: argsList, kwargs: argsDict };
      const sum = argsList[0] + argsList[1];
      return { argsList: [sum], argsDict: { sum, echo: argsDict } };
    }), 'register add2');
    check(reg && isId(reg.registrationId), 'register resolved without a registration id', reg);
    await within(5000, callee.w.register(`${base}.single`, () => 42), 'register single');
    await within(5000, callee.w.register(`${base}.async`, async ({ argsList }) => {
      await new Promise((r) => setTimeout(r, 50));
      return { argsList: argsList.slice().reverse() };
    }), 'register async');

    step('call add2');
    const res = await within(5000, caller.w.call(`${base}.add2`, { argsList: [2, 3], argsDict: { x: 'y', list: [1, 2] } }), 'call add2');
    check(sameValue(res.argsList, [5]), 'add2 result args', res.argsList);
    check(sameValue(res.argsDict, { sum: 5, echo: { x: 'y', list: [1, 2] } }), 'add2 result kwargs', res.argsDict);
    check(invocationSeen && sameValue(invocationSeen.args, [2, 3]), 'callee saw wrong args', invocationSeen);

    step('call single');
    const single = await within(5000, caller.w.call(`${base}.single`), 'call single');
    check(sameValue(single.argsList, [42]), 'single-value result', single);

    step('call async');
    const asyncRes = await within(5000, caller.w.call(`${base}.async`, [1, 2, 3]), 'call async');
    check(sameValue(asyncRes.argsList, [3, 2, 1]), 'async callee result', asyncRes);

    step('unregister');
    await within(5000, callee.w.unregister(`${base}.add2`), 'unregister');
    const afterUnreg = await outcome(within(5000, caller.w.call(`${base}.add2`, [1, 1]), 'call after unregister'));
    check(afterUnreg === 'wamp.error.no_such_procedure', 'call after unregister', afterUnreg);

    const close = [await disconnect(caller), await disconnect(callee)];
    return {
      protocol: caller.protocol,
      registration_id: idValue(reg.registrationId),
      id_type: typeof reg.registrationId,
      result: { args: describe(res.argsList), kwargs: describe(res.argsDict) },
      invocation: describe(invocationSeen),
      single: single.argsList[0],
      async_result: describe(asyncRes.argsList),
      after_unregister: afterUnreg,
      close,
    };
  },

  async app_error(opts, base) {
    const callee = await connect({ ...opts, label: 'callee' });
    const caller = await connect({ ...opts, label: 'caller' });
    step('register');
    await within(5000, callee.w.register(`${base}.fail`, () => {
      throw new AppError('com.myapp.error.custom', [1, 2], { foo: 'bar' });
    }), 'register fail');
    await within(5000, callee.w.register(`${base}.fail_async`, async () => {
      await new Promise((r) => setTimeout(r, 20));
      throw new AppError('com.myapp.error.async', ['later']);
    }), 'register fail_async');

    step('call fail');
    let err = null;
    try {
      const r = await within(5000, caller.w.call(`${base}.fail`), 'call fail');
      throw new Error(`call of a failing procedure succeeded with ${JSON.stringify(describe(r))}`);
    } catch (e) {
      err = e;
    }
    check(err && err.name === 'CallError', `caller should get a wampy CallError, got ${describeError(err)}`);
    check(err.errorUri === 'com.myapp.error.custom', 'error URI', err.errorUri);
    check(sameValue(err.argsList, [1, 2]), 'error args', err.argsList);
    check(sameValue(err.argsDict, { foo: 'bar' }), 'error kwargs', err.argsDict);

    step('call fail_async');
    let err2 = null;
    try {
      await within(5000, caller.w.call(`${base}.fail_async`), 'call fail_async');
    } catch (e) {
      err2 = e;
    }
    check(err2 && err2.errorUri === 'com.myapp.error.async', 'async error URI', err2);
    check(sameValue(err2.argsList, ['later']), 'async error args', err2.argsList);

    const close = [await disconnect(caller), await disconnect(callee)];
    return {
      protocol: caller.protocol,
      error: { uri: err.errorUri, args: describe(err.argsList), kwargs: describe(err.argsDict) },
      async_error: { uri: err2.errorUri, args: describe(err2.argsList), kwargs: describe(err2.argsDict) },
      close,
    };
  },

  // Binary values: native for msgpack (msgpackr) / cbor (cbor-x); wampy's
  // JSON serializer has no binary support, so the WAMP "\u0000"+base64
  // convention is applied by hand for json.
  async binary(opts, base) {
    const native = opts.serializer !== 'json';
    const payload = binaryPayload();
    const small = new Uint8Array([1, 2, 3, 0, 255]);
    const wire = native ? (b) => b : (b) => encodeJsonBinary(b);
    const unwire = native ? (v) => (isBinary(v) ? toBuffer(v) : null) : (v) => decodeJsonBinary(v);

    const callee = await connect({ ...opts, label: 'callee' });
    const caller = await connect({ ...opts, label: 'caller' });
    let seen = null;
    step('register echo');
    await within(5000, callee.w.register(`${base}.echo`, ({ argsList, argsDict }) => {
      seen = {
        types: argsList.map(typeName),
        kw_types: Object.fromEntries(Object.entries(argsDict || {}).map(([k, v]) => [k, typeName(v)])),
      };
      return { argsList, argsDict };
    }), 'register echo');

    step('call echo');
    const res = await within(5000, caller.w.call(`${base}.echo`, {
      argsList: [wire(payload), wire(small), 'text'],
      argsDict: { blob: wire(Buffer.from('kw-bytes')) },
    }), 'call echo');
    const back0 = unwire(res.argsList[0]);
    const back1 = unwire(res.argsList[1]);
    const backKw = unwire(res.argsDict.blob);
    check(back0 !== null && back0.equals(payload), 'echoed Buffer differs', res.argsList[0]);
    check(back1 !== null && back1.equals(Buffer.from(small)), 'echoed Uint8Array differs', res.argsList[1]);
    check(res.argsList[2] === 'text', 'echoed string differs', res.argsList[2]);
    check(backKw !== null && backKw.toString() === 'kw-bytes', 'echoed kwargs bytes differ', res.argsDict.blob);

    step('pubsub binary');
    const sub = await connect({ ...opts, label: 'subscriber' });
    const got = deferred();
    await within(5000, sub.w.subscribe(`${base}.bin`, (ev) => got.resolve(ev), SUB_OPTS), 'subscribe');
    await within(5000, caller.w.publish(`${base}.bin`, { argsList: [wire(payload)], argsDict: { b: wire(small) } }), 'publish');
    const ev = await within(5000, got.promise, 'binary event');
    const evBytes = unwire(ev.argsList[0]);
    const evKw = unwire(ev.argsDict.b);
    check(evBytes !== null && evBytes.equals(payload), 'event bytes differ', ev.argsList[0]);
    check(evKw !== null && evKw.equals(Buffer.from(small)), 'event kwargs bytes differ', ev.argsDict.b);

    const close = [await disconnect(sub), await disconnect(caller), await disconnect(callee)];
    return {
      protocol: caller.protocol,
      binary_mode: native ? 'native' : 'json-nul-base64-convention',
      callee_saw: seen,
      result_types: res.argsList.map(typeName),
      event_types: ev.argsList.map(typeName),
      echoed_hex: back0.toString('hex'),
      close,
    };
  },

  async no_such_procedure(opts, base) {
    const caller = await connect({ ...opts, label: 'caller' });
    step('call unknown');
    let err = null;
    try {
      const r = await within(5000, caller.w.call(`${base}.nobody_registered_this`, { argsList: [1], argsDict: { a: 1 } }), 'call unknown');
      throw new Error(`call of an unknown procedure succeeded: ${JSON.stringify(describe(r))}`);
    } catch (e) {
      err = e;
    }
    check(err && err.name === 'CallError', `expected a wampy CallError, got ${describeError(err)}`);
    check(err.errorUri === 'wamp.error.no_such_procedure', 'error URI', err.errorUri);
    step('session still usable');
    await within(5000, caller.w.register(`${base}.now_exists`, () => 'yes'), 'register after error');
    const r = await within(5000, caller.w.call(`${base}.now_exists`), 'call own procedure');
    check(sameValue(r.argsList, ['yes']), 'call own procedure', r);
    const close = await disconnect(caller);
    return { protocol: caller.protocol, error: err.errorUri, error_args: describe(err.argsList), close };
  },

  async not_authorized(opts, base) {
    const s = await connect({ ...opts, label: 'restricted' });
    const w = s.w;
    const suffix = base.split('.').pop();
    const results = {};
    step('publish com.other.topic');
    results.publish_other = await outcome(within(5000, w.publish('com.other.topic', { argsList: [1], argsDict: { k: 'v' } }), 'publish other'));
    step('call com.other.proc');
    results.call_other = await outcome(within(5000, w.call(`com.other.proc.${suffix}`, [1]), 'call other'));
    step('subscribe com.other.topic');
    results.subscribe_other = await outcome(within(5000, w.subscribe('com.other.topic', () => {}, SUB_OPTS), 'subscribe other'));
    step('register com.public.*');
    results.register_public = await outcome(within(5000, w.register(`com.public.proc.${suffix}`, () => 1), 'register public'));
    step('publish com.public.*');
    results.publish_public = await outcome(within(5000, w.publish(`com.public.topic.${suffix}`, [1]), 'publish public'));
    step('subscribe com.public.*');
    results.subscribe_public = await outcome(within(5000, w.subscribe(`com.public.topic.${suffix}`, () => {}, SUB_OPTS), 'subscribe public'));
    step('call com.public.* (unregistered)');
    results.call_public_unregistered = await outcome(within(5000, w.call(`com.public.nothing.${suffix}`), 'call public'));

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
    const close = await disconnect(s);
    return { protocol: s.protocol, authrole: s.details.authrole, authmethod: s.details.authmethod, results, close };
  },
};

run(async (opts) => {
  const scenario = opts.scenario;
  if (!scenarios[scenario]) {
    throw new Error(`unknown scenario '${scenario}' (one of ${Object.keys(scenarios).join(', ')})`);
  }
  const base = opts.prefix ?? `com.interop.wampy.${opts.serializer}.${scenario}.${uniqueSuffix()}`;
  const result = await scenarios[scenario](opts, base);
  check(result.protocol === `wamp.2.${opts.serializer}`,
    `negotiated WebSocket subprotocol ${result.protocol}, expected wamp.2.${opts.serializer}`);
  return {
    scenario,
    serializer: opts.serializer,
    ...clientInfo(),
    ...result,
  };
});
