// Loading and connecting autobahn-js (npm "autobahn").
//
// Two releases are tested, installed side by side (see package.json):
//   lib "autobahn"   -> autobahn@22.11.1: on Node it uses the `ws` package,
//                       unless a global WebSocket exists (Node >= 22).
//   lib "autobahn26" -> autobahn@26.3.1 (npm alias): uses the global
//                       WebSocket only (Node >= 22, or Node 20 with
//                       --experimental-websocket).  Where there is none,
//                       the `ws` package is installed as globalThis.WebSocket.

import { within, deferred, step } from './harness.mjs';

export const LIBS = ['autobahn', 'autobahn26'];

let websocketImpl = null;

export async function loadAutobahn(lib = 'autobahn') {
  if (!LIBS.includes(lib)) {
    throw new Error(`unknown autobahn lib '${lib}' (expected one of ${LIBS.join(', ')})`);
  }
  const hasGlobal = typeof globalThis.WebSocket !== 'undefined';
  if (lib === 'autobahn26' && !hasGlobal) {
    const ws = await import('ws');
    globalThis.WebSocket = ws.WebSocket ?? ws.default;
    websocketImpl = 'ws (installed as globalThis.WebSocket)';
  } else if (hasGlobal) {
    websocketImpl = `global WebSocket (Node ${process.versions.node})`;
  } else {
    websocketImpl = 'ws (autobahn built-in Node transport)';
  }
  const mod = await import(lib);
  const autobahn = mod.default ?? mod;
  return autobahn;
}

export function transportKind(url) {
  if (url.startsWith('rs+unix://')) return 'rawsocket-unix';
  if (url.startsWith('rs://')) return 'rawsocket-tcp';
  return 'websocket';
}

export function clientInfo(autobahn, lib, url) {
  const transport = transportKind(url);
  return {
    client: lib,
    client_version: autobahn.version,
    transport,
    websocket: transport === 'websocket' ? websocketImpl : null,
    node: process.versions.node,
  };
}

export function makeSerializer(autobahn, name) {
  const ser = autobahn.serializer;
  const ctor = {
    json: ser.JSONSerializer,
    msgpack: ser.MsgpackSerializer,
    cbor: ser.CBORSerializer,
  }[name];
  if (!ctor) {
    throw new Error(`serializer '${name}' is not available in this autobahn-js build`);
  }
  return new ctor();
}

/**
 * Connection options for a router URL:
 *   ws://host:port/path          WebSocket with the given serializer
 *   rs://host:port               RawSocket over TCP (autobahn-js on Node: JSON only)
 *   rs+unix:///path/to/socket    RawSocket over a Unix domain socket (JSON only)
 */
export function transportOptions(autobahn, url, serializer) {
  if (url.startsWith('rs://') || url.startsWith('rs+unix://')) {
    if (serializer !== 'json') {
      throw new Error(`autobahn-js RawSocket transport only speaks JSON, not '${serializer}'`);
    }
    if (url.startsWith('rs+unix://')) {
      return { transports: [{ type: 'rawsocket', path: url.slice('rs+unix://'.length) }] };
    }
    const u = new URL(url);
    return { transports: [{ type: 'rawsocket', host: u.hostname, port: Number(u.port) }] };
  }
  return { url, serializers: [makeSerializer(autobahn, serializer)] };
}

/**
 * Open a connection and join the realm.  Resolves with
 * {session, details, connection, closed} where `closed` is a promise of the
 * close reason.  No automatic reconnects: a lost connection fails the test.
 */
export async function connect(autobahn, { url, realm, serializer, label = 'session' }) {
  const joined = deferred();
  const closed = deferred();
  let opened = false;
  const connection = new autobahn.Connection({
    ...transportOptions(autobahn, url, serializer),
    realm,
    max_retries: 0,
    retry_if_unreachable: false,
    use_es6_promises: true,
    on_user_error: (error, customErrorMessage) => {
      process.stderr.write(`[${label}] user error: ${customErrorMessage} ${error && error.stack}\n`);
    },
    on_internal_error: (error, customErrorMessage) => {
      process.stderr.write(`[${label}] internal error: ${customErrorMessage} ${error && error.stack}\n`);
    },
  });
  connection.onopen = (session, details) => {
    opened = true;
    joined.resolve({ session, details });
  };
  connection.onclose = (reason, details) => {
    if (!opened) {
      joined.reject(new Error(`[${label}] could not join realm '${realm}' at ${url}: ${reason} ${JSON.stringify(details)}`));
    }
    closed.resolve({ reason, details });
    return true; // never retry
  };
  step(`${label}: connect+join`);
  connection.open();
  const { session, details } = await within(10000, joined.promise, `[${label}] join`);
  const protocol = details && details.transport && details.transport.protocol;
  return { session, details, connection, closed: closed.promise, protocol };
}

/** Leave the realm (GOODBYE handshake) and wait for the transport to close. */
export async function disconnect(conn, label = 'session') {
  step(`${label}: close`);
  conn.connection.close('wamp.close.normal', 'done');
  const { reason, details } = await within(5000, conn.closed, `[${label}] close`);
  return { reason, goodbye_reason: details && details.reason };
}
