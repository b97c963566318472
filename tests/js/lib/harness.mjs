// Shared plumbing for the interop scripts: argument parsing, a hard
// self-timeout, step tracking for diagnostics, JSON-safe value description
// and the single JSON result line on stdout.
//
// Protocol with the caller (tests/interop/test_interop_js.py):
//   * exactly one line on stdout starting with '{' is the result (the last
//     such line wins); everything else (client library logging) goes to
//     stderr or is ignored;
//   * exit 0 and {"ok": true, ...}  on success,
//     exit 1 and {"ok": false, "error": ..., "step": ...} on failure,
//     exit 2 and {"ok": false, "error": "timeout ..."} on self-timeout.

import { parseArgs } from 'node:util';
import { createHash, randomBytes } from 'node:crypto';

export const DEFAULT_TIMEOUT_S = 15;

const OPTIONS = {
  url: { type: 'string' },
  realm: { type: 'string' },
  serializer: { type: 'string' },
  scenario: { type: 'string' },
  lib: { type: 'string' },
  prefix: { type: 'string' },
  timeout: { type: 'string' },
};

/** Options from argv (--name value), falling back to WAMP_* env variables. */
export function getOptions(defaults = {}) {
  const { values } = parseArgs({ options: OPTIONS, allowPositionals: false, strict: true });
  const env = process.env;
  const opts = {
    url: values.url ?? env.WAMP_URL ?? defaults.url,
    realm: values.realm ?? env.WAMP_REALM ?? defaults.realm ?? 'realm1',
    serializer: values.serializer ?? env.WAMP_SERIALIZER ?? defaults.serializer ?? 'json',
    scenario: values.scenario ?? env.WAMP_SCENARIO ?? defaults.scenario,
    lib: values.lib ?? env.WAMP_LIB ?? defaults.lib,
    prefix: values.prefix ?? env.WAMP_PREFIX ?? defaults.prefix,
    timeout: Number(values.timeout ?? env.WAMP_TIMEOUT ?? defaults.timeout ?? DEFAULT_TIMEOUT_S),
  };
  if (!opts.url) {
    throw new Error('router URL missing: pass --url ws://host:port/path or set WAMP_URL');
  }
  return opts;
}

let currentStep = 'start';
const stepLog = [];

/** Record what the script is doing, so a failure or timeout says where. */
export function step(name) {
  currentStep = name;
  stepLog.push(name);
}

export class CheckError extends Error {
  constructor(message, observed) {
    super(message);
    this.name = 'CheckError';
    this.observed = observed;
  }
}

/** Fail the scenario with a reason unless cond holds. */
export function check(cond, message, observed) {
  if (!cond) {
    throw new CheckError(message, observed);
  }
}

function jsonReplacer(_key, value) {
  // 64-bit integers decoded as BigInt (msgpackr, cbor-x): keep them readable.
  if (typeof value === 'bigint') {
    return Number.isSafeInteger(Number(value)) ? Number(value) : value.toString();
  }
  return value;
}

export function emit(obj) {
  process.stdout.write(JSON.stringify(obj, jsonReplacer) + '\n');
}

function exitAfterFlush(code) {
  // process.exit() may cut a piped stdout short; exit once it drained.
  process.stdout.write('', () => process.exit(code));
  setTimeout(() => process.exit(code), 500).unref();
}

/**
 * Run main(opts) with a hard self-timeout.  main returns an object merged
 * into the result line.
 */
export async function run(main, defaults = {}) {
  let opts;
  try {
    opts = getOptions(defaults);
  } catch (e) {
    emit({ ok: false, error: `bad arguments: ${e.message}` });
    exitAfterFlush(1);
    return;
  }
  const started = Date.now();
  const timer = setTimeout(() => {
    emit({
      ok: false,
      error: `timeout after ${opts.timeout}s in step '${currentStep}'`,
      step: currentStep,
      steps: stepLog,
    });
    exitAfterFlush(2);
  }, opts.timeout * 1000);
  process.on('unhandledRejection', (reason) => {
    emit({ ok: false, error: `unhandled rejection: ${describeError(reason)}`, step: currentStep, steps: stepLog });
    exitAfterFlush(1);
  });
  try {
    const result = await main(opts);
    clearTimeout(timer);
    emit({ ok: true, elapsed_ms: Date.now() - started, ...result });
    exitAfterFlush(0);
  } catch (e) {
    clearTimeout(timer);
    emit({
      ok: false,
      error: describeError(e),
      observed: e && e.observed !== undefined ? describe(e.observed) : undefined,
      step: currentStep,
      steps: stepLog,
    });
    exitAfterFlush(1);
  }
}

/** A one-line description of anything thrown (Error, autobahn.Error, wampy errors, plain objects). */
export function describeError(e) {
  if (e === null || e === undefined) return String(e);
  if (e instanceof CheckError) return `check failed: ${e.message}`;
  const parts = [];
  if (e.name) parts.push(e.name);
  if (typeof e.error === 'string') parts.push(e.error); // autobahn.Error / wampy WebsocketError
  if (e.errorUri) parts.push(e.errorUri); // wampy WampError
  if (e.message) parts.push(e.message);
  if (parts.length === 0) {
    try {
      return JSON.stringify(describe(e));
    } catch {
      return String(e);
    }
  }
  return parts.join(': ');
}

export function isBinary(v) {
  return v instanceof Uint8Array || v instanceof ArrayBuffer || ArrayBuffer.isView(v);
}

export function toBuffer(v) {
  if (Buffer.isBuffer(v)) return v;
  if (v instanceof ArrayBuffer) return Buffer.from(v);
  if (ArrayBuffer.isView(v)) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  throw new TypeError(`not binary: ${typeName(v)}`);
}

export function typeName(v) {
  if (v === null) return 'null';
  if (Buffer.isBuffer(v)) return 'Buffer';
  if (v instanceof Uint8Array) return 'Uint8Array';
  if (v instanceof ArrayBuffer) return 'ArrayBuffer';
  if (ArrayBuffer.isView(v)) return v.constructor.name;
  if (Array.isArray(v)) return 'Array';
  return typeof v === 'object' ? (v.constructor && v.constructor.name) || 'Object' : typeof v;
}

/**
 * JSON-safe rendering of WAMP payloads.  Binary values become
 * {"$bytes": "<hex>"} so the Python side can compare exactly.
 */
export function describe(v) {
  if (v === undefined) return null;
  if (isBinary(v)) return { $bytes: toBuffer(v).toString('hex') };
  if (Array.isArray(v)) return v.map(describe);
  if (typeof v === 'bigint') return { $bigint: v.toString() };
  if (v instanceof Map) return Object.fromEntries([...v].map(([k, x]) => [String(k), describe(x)]));
  if (v !== null && typeof v === 'object') {
    const out = {};
    for (const [k, x] of Object.entries(v)) out[k] = describe(x);
    return out;
  }
  return v;
}

export function sha256hex(buf) {
  return createHash('sha256').update(buf).digest('hex');
}

/** A fresh URI component, so runs sharing one router never collide. */
export function uniqueSuffix() {
  return 'r' + randomBytes(6).toString('hex');
}

/** Deep equality on described (JSON-safe) values. */
export function sameValue(a, b) {
  return JSON.stringify(canonical(describe(a))) === JSON.stringify(canonical(describe(b)));
}

function canonical(v) {
  if (Array.isArray(v)) return v.map(canonical);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]));
  }
  return v;
}

/** Resolve with the promise's value, or reject after ms with a message naming what hung. */
export function within(ms, promise, what) {
  let t;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

/** A promise plus its resolve/reject, for event-driven waits. */
export function deferred() {
  let resolve, reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** The binary payload used by the binary scenarios: all 256 byte values plus a few edge bytes. */
export function binaryPayload() {
  const b = Buffer.alloc(256 + 4);
  for (let i = 0; i < 256; i++) b[i] = i;
  b.set([0x00, 0xff, 0x00, 0x5c], 256); // NUL, 0xff, NUL, backslash
  return b;
}

/**
 * WAMP JSON binary convention: a string starting with "\u0000" followed by
 * base64 stands for a byte string.  Returns a Buffer, or null if s is not one.
 */
export function decodeJsonBinary(s) {
  if (typeof s !== 'string' || !s.startsWith('\u0000')) return null;
  return Buffer.from(s.slice(1), 'base64');
}

export function encodeJsonBinary(buf) {
  return '\u0000' + toBuffer(buf).toString('base64');
}
