#!/usr/bin/env node
// Authentication with autobahn-js (npm "autobahn" 22.11.1, or "autobahn26") or Wampy.js
// (npm "wampy" 8.0.2) on Node.js, driven by tests/auth/test_auth.py.
//
// usage: WAMP_AUTH_CASES='[...]' node auth_scenarios.mjs --lib autobahn|autobahn26|wampy --url ws://unused
//
// WAMP_AUTH_CASES is a JSON list of cases, each run in its own connection, one after another:
//   {"name": ..., "url": "ws://..." | "rs://host:port", "realm": ..., "serializer": "json",
//    "method": "ticket" | "wampcra" | "cryptosign" | "anonymous",
//    "authid": ..., "ticket": ..., "secret": ... (wampcra: the secret or password),
//    "seed": "<64 hex>" (cryptosign: the Ed25519 private key seed)}
//
// autobahn-js's own auth helpers do the work: onchallenge returns the ticket,
// autobahn.auth_cra.derive_key()/sign() for WAMP-CRA (plain or salted),
// autobahn.auth_cryptosign.sign_challenge() with a tweetnacl key pair for cryptosign.
// autobahn-js has no SCRAM.
// wampy: onChallenge returns the ticket, or is wampy's own wampy/wampcra.js sign(secret) helper (which
// derives the PBKDF2 key itself when the CHALLENGE has a salt).  wampy speaks WebSocket only, and its
// cryptosign plugin is not used here: such cases answer {"unsupported": why}.
//
// Prints one JSON line {"ok": true, "client": ..., "results": {name: outcome}} where
// outcome is {"welcome": {authid, authrole, authmethod, authprovider}} or
// {"abort": {"reason": <ABORT URI>, "message": ...}, "close": <connection close reason>}.

import { run, step, within, deferred, describeError } from './lib/harness.mjs';
import { loadAutobahn, clientInfo, transportOptions } from './lib/autobahn_client.mjs';

async function runWampyCase(lib, c) {
  if (c.method === 'cryptosign' || c.method === 'scram') {
    return { unsupported: `${c.method} is not wired up for wampy in this script` };
  }
  if (!c.url.startsWith('ws')) {
    return { unsupported: 'wampy speaks WebSocket only' };
  }
  let challengeSeen = null;
  const sign = c.method === 'wampcra' ? lib.cra.sign(c.secret) : null;
  const onChallenge = (method, extra) => {
    challengeSeen = method;
    if (method === 'ticket') {
      return c.ticket;
    }
    if (method === 'wampcra') {
      return sign(method, extra);
    }
    throw new Error(`unexpected challenge for authmethod ${method}`);
  };
  const w = new lib.Wampy(c.url, {
    realm: c.realm,
    ws: lib.WebSocket,
    serializer: lib.makeSerializer(c.serializer || 'json'),
    autoReconnect: false,
    debug: false,
    // wampy refuses (client-side) to send authmethods without an authid: anonymous is its default
    ...(c.method === 'anonymous' ? {} : { authid: c.authid || undefined, authmethods: [c.method], onChallenge }),
    onError: () => {},
  });
  step(`${c.name}: connect`);
  try {
    const d = (await within(8000, w.connect(), `case ${c.name}`)) || {};
    const welcome = { authid: d.authid, authrole: d.authrole, authmethod: d.authmethod,
                      authprovider: d.authprovider };
    await within(5000, w.disconnect(), `case ${c.name} disconnect`).catch(() => {});
    return { welcome, challenge: challengeSeen };
  } catch (e) {
    if (e && typeof e.errorUri === 'string') {
      return { abort: { reason: e.errorUri, message: e.details && e.details.message }, challenge: challengeSeen };
    }
    throw e;
  }
}

async function loadWampy() {
  const { Wampy } = await import('wampy');
  const cra = await import('wampy/wampcra.js');
  const { default: WebSocket } = await import('ws');
  const { makeSerializer, clientInfo: wampyInfo } = await import('./lib/wampy_client.mjs');
  return { Wampy, cra, WebSocket, makeSerializer, info: wampyInfo() };
}

function keyPair(ab, seedHex) {
  return ab.nacl.sign.keyPair.fromSeed(Uint8Array.from(Buffer.from(seedHex, 'hex')));
}

async function runCase(ab, c) {
  const done = deferred();
  let pkey = null;
  let authextra;
  let challengeSeen = null;
  if (c.method === 'cryptosign') {
    pkey = keyPair(ab, c.seed);
    authextra = { pubkey: ab.auth_cryptosign.public_key(pkey) };
  }
  const onchallenge = (session, method, extra) => {
    challengeSeen = method;
    if (method === 'ticket') {
      return c.ticket;
    }
    if (method === 'wampcra') {
      const key = extra.salt !== undefined
        ? ab.auth_cra.derive_key(c.secret, extra.salt, extra.iterations, extra.keylen)
        : c.secret;
      return ab.auth_cra.sign(key, extra.challenge);
    }
    if (method === 'cryptosign') {
      return ab.auth_cryptosign.sign_challenge(pkey, extra);
    }
    throw new Error(`unexpected challenge for authmethod ${method}`);
  };
  let opened = false;
  const connection = new ab.Connection({
    ...transportOptions(ab, c.url, c.serializer || 'json'),
    realm: c.realm,
    authmethods: [c.method],
    authid: c.authid,
    authextra,
    onchallenge,
    max_retries: 0,
    retry_if_unreachable: false,
    use_es6_promises: true,
  });
  connection.onopen = (session, details) => {
    opened = true;
    const d = details || {};
    done.resolve({
      welcome: { authid: d.authid, authrole: d.authrole, authmethod: d.authmethod, authprovider: d.authprovider },
      challenge: challengeSeen,
      session_id: session.id,
    });
    connection.close('wamp.close.normal', 'done');
  };
  connection.onclose = (reason, details) => {
    if (!opened) {
      done.resolve({
        abort: { reason: details && details.reason, message: details && details.message },
        close: reason,
        challenge: challengeSeen,
      });
    }
    return true; // never retry
  };
  step(`${c.name}: open`);
  connection.open();
  return within(8000, done.promise, `case ${c.name}`);
}

run(async (opts) => {
  const cases = JSON.parse(process.env.WAMP_AUTH_CASES || '[]');
  const results = {};
  if (opts.lib === 'wampy') {
    const lib = await loadWampy();
    for (const c of cases) {
      try {
        results[c.name] = await runWampyCase(lib, c);
      } catch (e) {
        results[c.name] = { error: describeError(e) };
      }
    }
    return { client: lib.info.client, client_version: lib.info.client_version, node: lib.info.node, results };
  }
  const ab = await loadAutobahn(opts.lib || 'autobahn');
  for (const c of cases) {
    try {
      results[c.name] = await runCase(ab, c);
    } catch (e) {
      results[c.name] = { error: describeError(e) };
    }
  }
  const info = clientInfo(ab, opts.lib || 'autobahn', opts.url);
  return { client: info.client, client_version: info.client_version, node: info.node, results };
});
