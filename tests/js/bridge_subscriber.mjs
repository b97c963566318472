#!/usr/bin/env node
// An autobahn-js subscriber for the HTTP bridge tests (tests/web/test_bridge.py): it sees what
// a plain HTTP client (curl) published through the bridge's publisher or webhook service.
//
// usage: node bridge_subscriber.mjs --lib autobahn|autobahn26 --url ws://... --realm realm1 \
//            --serializer json|msgpack|cbor --prefix TOPIC [--timeout 15]
//
// Subscribes to TOPIC, prints {"status": "ready", ...}, waits for one event and
// prints the result line {"ok": true, "event": {"args": [...], "kwargs": {...},
// "publication": id}}, then leaves.

import { run, step, emit, describe, within, deferred, check } from './lib/harness.mjs';
import { loadAutobahn, clientInfo, connect, disconnect } from './lib/autobahn_client.mjs';

run(async (opts) => {
  check(opts.prefix, '--prefix (the topic) is required');
  const lib = opts.lib ?? 'autobahn';
  const ab = await loadAutobahn(lib);
  const conn = await connect(ab, { ...opts, label: 'subscriber' });
  const got = deferred();
  step('subscribe');
  await within(5000, conn.session.subscribe(opts.prefix, (args, kwargs, details) => {
    got.resolve({ args: describe(args || []), kwargs: describe(kwargs || {}), publication: details.publication });
  }), 'subscribe');
  emit({ status: 'ready', ...clientInfo(ab, lib, opts.url), session: conn.session.id });
  step('wait for the event');
  const event = await within((opts.timeout - 1) * 1000, got.promise, 'event');
  const close = await disconnect(conn, 'subscriber');
  return { event, close, ...clientInfo(ab, lib, opts.url) };
});
