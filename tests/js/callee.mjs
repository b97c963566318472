#!/usr/bin/env node
// A JavaScript callee for cross-client tests: the procedures are called by
// another client (autobahn-python from tests/interop/test_interop_js.py), possibly
// with a different serializer, so the router has to translate payloads.
//
// usage: node callee.mjs --lib autobahn|autobahn26|wampy --url ws://... \
//            --realm realm1 --serializer json|msgpack|cbor --prefix com.x.y [--timeout 15]
//
// Registers, under PREFIX:
//   .echo        returns its args/kwargs unchanged
//   .inspect     returns kwargs {args: [...], kwargs: {...}} describing what
//                the callee received: kind (binary | json-nul-base64 | value),
//                JS type, length and sha256 of byte values
//   .make_bytes  [n] -> [bytes of length n (i % 256), "\u0000"-base64 for json]
//   .add2        [a, b] {..} -> args [a + b], kwargs {sum, echo}
//   .fail        throws application error com.myapp.error.custom [1, 2] {foo: "bar"}
//
// Then prints {"status": "ready", ...} on stdout.  It runs until stdin is
// closed (or SIGTERM), leaves the realm and prints the final result line
// {"ok": true, "invocations": {...}}, exit 0.  Self-timeout: --timeout
// seconds (default 15), then exit 2.

import {
  run, step, emit, describe, isBinary, toBuffer, typeName, sha256hex, decodeJsonBinary,
  encodeJsonBinary, within, deferred, check,
} from './lib/harness.mjs';

function inspectValue(v) {
  if (isBinary(v)) {
    const b = toBuffer(v);
    return { kind: 'binary', type: typeName(v), length: b.length, sha256: sha256hex(b) };
  }
  const fromJson = decodeJsonBinary(v);
  if (fromJson !== null) {
    return { kind: 'json-nul-base64', type: 'string', length: fromJson.length, sha256: sha256hex(fromJson) };
  }
  return { kind: 'value', type: typeName(v), value: describe(v) };
}

function inspectPayload(args, kwargs) {
  return {
    args: (args || []).map(inspectValue),
    kwargs: Object.fromEntries(Object.entries(kwargs || {}).map(([k, v]) => [k, inspectValue(v)])),
  };
}

function patternBytes(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = i % 256;
  return b;
}

const APP_ERROR = { uri: 'com.myapp.error.custom', args: [1, 2], kwargs: { foo: 'bar' } };

/** Procedures in a client-neutral form: (args, kwargs) -> {args, kwargs}. */
function procedures(serializer, counts) {
  const wire = serializer === 'json' ? encodeJsonBinary : (b) => b;
  const count = (name) => { counts[name] = (counts[name] || 0) + 1; };
  return {
    echo: (args, kwargs) => { count('echo'); return { args, kwargs }; },
    inspect: (args, kwargs) => { count('inspect'); return { args: [], kwargs: inspectPayload(args, kwargs) }; },
    make_bytes: (args) => {
      count('make_bytes');
      const b = patternBytes(args[0]);
      return { args: [wire(b)], kwargs: { sha256: sha256hex(b) } };
    },
    add2: (args, kwargs) => {
      count('add2');
      const sum = args[0] + args[1];
      return { args: [sum], kwargs: { sum, echo: kwargs } };
    },
    fail: () => { count('fail'); return { error: APP_ERROR }; },
  };
}

async function startAutobahn(opts, procs) {
  const { loadAutobahn, clientInfo, connect, disconnect } = await import('./lib/autobahn_client.mjs');
  const ab = await loadAutobahn(opts.lib);
  const conn = await connect(ab, { ...opts, label: 'callee' });
  for (const [name, fn] of Object.entries(procs)) {
    step(`register ${name}`);
    await within(5000, conn.session.register(`${opts.prefix}.${name}`, (args, kwargs) => {
      const r = fn(args, kwargs);
      if (r.error) throw new ab.Error(r.error.uri, r.error.args, r.error.kwargs);
      return new ab.Result(r.args, r.kwargs);
    }), `register ${name}`);
  }
  return {
    info: { ...clientInfo(ab, opts.lib, opts.url), protocol: conn.protocol, session: conn.session.id },
    close: () => disconnect(conn, 'callee'),
  };
}

async function startWampy(opts, procs) {
  const { clientInfo, connect, disconnect } = await import('./lib/wampy_client.mjs');
  const conn = await connect({ ...opts, label: 'callee' });
  for (const [name, fn] of Object.entries(procs)) {
    step(`register ${name}`);
    await within(5000, conn.w.register(`${opts.prefix}.${name}`, ({ argsList, argsDict }) => {
      const r = fn(argsList || [], argsDict || {});
      if (r.error) {
        // Wampy's callee turns a thrown {error, argsList, argsDict} into an ERROR message
        const e = new Error(r.error.uri);
        Object.assign(e, { error: r.error.uri, argsList: r.error.args, argsDict: r.error.kwargs });
        throw e;
      }
      return { argsList: r.args, argsDict: r.kwargs };
    }), `register ${name}`);
  }
  return {
    info: { ...clientInfo(), protocol: conn.protocol },
    close: () => disconnect(conn),
  };
}

run(async (opts) => {
  check(opts.prefix, '--prefix is required');
  const lib = opts.lib ?? 'autobahn';
  const counts = {};
  const procs = procedures(opts.serializer, counts);
  const stdinClosed = deferred();
  process.stdin.on('end', () => stdinClosed.resolve('stdin closed'));
  process.stdin.on('error', () => stdinClosed.resolve('stdin error'));
  process.stdin.resume();
  process.on('SIGTERM', () => stdinClosed.resolve('SIGTERM'));

  step('start callee');
  const callee = lib === 'wampy' ? await startWampy(opts, procs) : await startAutobahn({ ...opts, lib }, procs);
  emit({ status: 'ready', lib, serializer: opts.serializer, prefix: opts.prefix, procedures: Object.keys(procs), ...callee.info });

  step('serving (waiting for stdin to close)');
  const why = await stdinClosed.promise;
  const close = await callee.close();
  return { status: 'done', stopped_by: why, invocations: counts, close, ...callee.info };
});
