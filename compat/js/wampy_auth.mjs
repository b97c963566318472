#!/usr/bin/env node
// Authentication with wampy 8.0.2 for the differential check (compat/run.py).
//
// usage: WAMP_AUTH_CASES='[...]' node wampy_auth.mjs --url ws://unused [--timeout 60]
//
// The cases have the format of tests/js/auth_scenarios.mjs ({name, url, realm, serializer,
// method: ticket|wampcra|cryptosign, authid, ticket, secret, seed}).  wampy's own helpers do
// the work: wampy/wampcra.js (deriveKey, signManual) and wampy/cryptosign.js (sign).
// Prints {"ok": true, "results": {name: {"welcome": {...}} | {"error": ...}}}.

import { createRequire } from 'node:module';

import { run, step, within, describeError } from '../../tests/js/lib/harness.mjs';
import { makeSerializer } from '../../tests/js/lib/wampy_client.mjs';

const JS = new URL('../../tests/js/', import.meta.url);
const require = createRequire(new URL('package.json', JS));
const WebSocket = require('ws');
const nacl = require('tweetnacl');
const { Wampy } = await import(new URL('node_modules/wampy/dist/esm/wampy.js', JS));
const cra = await import(new URL('node_modules/wampy/dist/esm/auth/wampcra/wampy-cra.js', JS));
const cryptosign = await import(new URL('node_modules/wampy/dist/esm/auth/cryptosign/wampy-cryptosign.js', JS));

// Each case connects from a loopback address of its own (wampfabric throttles failed
// authentications per peer address): wampy constructs `new ws(url, protocols, ...)`,
// so a ws subclass adds the local address.
function wsFrom(localAddress) {
  return class extends WebSocket {
    constructor(url, protocols) {
      super(url, protocols, { localAddress });
    }
  };
}

async function runCase(c, i) {
  let authextra;
  let onChallenge;
  if (c.method === 'ticket') {
    onChallenge = () => c.ticket;
  } else if (c.method === 'wampcra') {
    onChallenge = async (method, info) => {
      const key = info.salt !== undefined ? await cra.deriveKey(c.secret, info.salt, info.iterations, info.keylen) : c.secret;
      return cra.signManual(key, info.challenge);
    };
  } else if (c.method === 'cryptosign') {
    const kp = nacl.sign.keyPair.fromSeed(Uint8Array.from(Buffer.from(c.seed, 'hex')));
    authextra = { pubkey: Buffer.from(kp.publicKey).toString('hex') };
    onChallenge = cryptosign.sign(c.seed);
  }
  const options = {
    realm: c.realm,
    ws: wsFrom(`127.0.0.${100 + i}`),
    serializer: makeSerializer(c.serializer || 'json'),
    autoReconnect: false,
    authmethods: [c.method],
    onChallenge,
  };
  // no undefined values: msgpackr would encode them as an ext type (and cbor-x as CBOR
  // undefined) in HELLO, which Crossbar.io refuses (tests/js/README.md, wampy quirks)
  if (c.authid !== undefined) options.authid = c.authid;
  if (authextra !== undefined) options.authextra = authextra;
  const w = new Wampy(c.url, options);
  step(`${c.name}: connect`);
  try {
    const d = await within(8000, w.connect(), `case ${c.name}`);
    const out = { welcome: { authid: d.authid, authrole: d.authrole, authmethod: d.authmethod, authprovider: d.authprovider } };
    try { await within(3000, w.disconnect(), 'disconnect'); } catch (e) { /* not under test */ }
    return out;
  } catch (e) {
    // wampy rejects connect() with the ABORT's reason as error URI (or a transport error)
    const reason = (e && (e.errorUri || e.error)) || null;
    return reason ? { abort: reason } : { error: describeError(e) };
  }
}

run(async () => {
  const cases = JSON.parse(process.env.WAMP_AUTH_CASES || '[]');
  const results = {};
  for (const [i, c] of cases.entries()) {
    results[c.name] = await runCase(c, i);
  }
  return { results };
});
