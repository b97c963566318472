// Loading and connecting Wampy.js (npm "wampy") on Node.
//
// On Node, Wampy needs a WebSocket class: the `ws` package is passed in.
// Serializers: wampy's own JsonSerializer, MsgpackSerializer (msgpackr) and
// CborSerializer (cbor-x).
//
// Client-side settings needed for a strict router (Crossbar.io as well):
//
// * CBOR, IDs: wampy's default cbor-x options include int64AsNumber: true, so
//   router-assigned IDs above 2^32 become JS numbers, which cbor-x encodes
//   back as float64 (e.g. in UNREGISTER/UNSUBSCRIBE); a strict router rejects
//   a float ID as a protocol error.  Decoding 64-bit integers as BigInt (as
//   wampy's msgpackr serializer does by default) round-trips them exactly.
// * CBOR, bytes: wampy decodes byte strings into Uint8Array, and cbor-x
//   encodes a Uint8Array as tag 64 (RFC 8746 typed array) by default, so an
//   echoed byte string goes back tagged; a router translating to JSON or
//   msgpack must then understand tag 64 (Crossbar.io does not: it drops the
//   receiving peer's transport).  tagUint8Array: false sends plain byte strings.
// * SUBSCRIBE: wampy 8.0.2 always sends {match, get_retained} even when the
//   caller gave neither; JSON drops undefined values but msgpackr encodes
//   undefined as an ext type and cbor-x as CBOR `undefined`, which a strict
//   router rejects.  So every subscribe passes both options explicitly.

import { readFileSync } from 'node:fs';
import { Wampy } from 'wampy';
import { JsonSerializer } from 'wampy/JsonSerializer.js';
import { MsgpackSerializer } from 'wampy/MsgpackSerializer.js';
import { CborSerializer } from 'wampy/CborSerializer.js';
import WebSocket from 'ws';

import { step, within, deferred, describeError } from './harness.mjs';

// wampy's "exports" hide package.json from import/require; read it from disk.
export const WAMPY_VERSION = JSON.parse(
  readFileSync(new URL('../node_modules/wampy/package.json', import.meta.url), 'utf8'),
).version;

export const CBOR_OPTIONS = { useRecords: false, mapsAsObjects: true, largeBigIntToFloat: true, tagUint8Array: false };
export const SUB_OPTS = { match: 'exact', get_retained: false };

export function makeSerializer(name) {
  switch (name) {
    case 'json': return new JsonSerializer();
    case 'msgpack': return new MsgpackSerializer();
    case 'cbor': return new CborSerializer(CBOR_OPTIONS);
    default: throw new Error(`serializer '${name}' is not available in wampy`);
  }
}

export function clientInfo() {
  return { client: 'wampy', client_version: WAMPY_VERSION, transport: 'websocket', websocket: 'ws', node: process.versions.node };
}

/** Connect and join; resolves with {w, details, protocol, label}. No automatic reconnects. */
export async function connect({ url, realm, serializer, label = 'session' }) {
  const closed = deferred();
  const w = new Wampy(url, {
    realm,
    ws: WebSocket,
    serializer: makeSerializer(serializer),
    autoReconnect: false,
    debug: false,
    onClose: () => closed.resolve('closed'),
    onError: (e) => process.stderr.write(`[${label}] wampy error: ${describeError(e)}\n`),
  });
  step(`${label}: connect+join`);
  const details = await within(10000, w.connect(), `[${label}] join`);
  const protocol = w._ws && w._ws.protocol; // negotiated subprotocol (Wampy offers exactly one)
  return { w, details, protocol, label, closed: closed.promise };
}

/** Leave the realm (GOODBYE) and close the WebSocket. */
export async function disconnect(conn) {
  step(`${conn.label}: close`);
  await within(5000, conn.w.disconnect(), `[${conn.label}] disconnect`);
  return { reason: 'closed' };
}
