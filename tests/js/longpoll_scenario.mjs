#!/usr/bin/env node
// autobahn-js over WAMP-over-HTTP-long-poll (its 'longpoll' transport type) for
// tests/web/test_longpoll.py.  Node.js has no XMLHttpRequest, which that transport
// uses: lib/xhr_shim.mjs provides one over node:http.
//
// usage: node longpoll_scenario.mjs --lib autobahn|autobahn26 --url http://host:port/lp \
//            --realm realm1 --prefix P [--timeout 15]
//
// 1. joins over long-poll, subscribes to P.topic, prints {"status": "ready", ...};
// 2. waits for one event on P.topic (published by the test's autobahn-python client);
// 3. calls P.add2 with [2, 3] {"k": "v"} (registered by the autobahn-python client);
// 4. publishes ["from-js"] {"n": 1} on P.back (acknowledged);
// 5. leaves (GOODBYE, then the transport's close request).
// Result line: {"ok": true, "event": ..., "call": ..., "publication": id, "close": ..., "xhr": ...}.

import { run, step, emit, describe, within, deferred, check } from './lib/harness.mjs';
import { loadAutobahn } from './lib/autobahn_client.mjs';
import { install, shutdown, stats } from './lib/xhr_shim.mjs';

run(async (opts) => {
  check(opts.prefix, '--prefix is required');
  install();
  const lib = opts.lib ?? 'autobahn';
  const ab = await loadAutobahn(lib);
  const joined = deferred();
  const closed = deferred();
  let opened = false;
  const connection = new ab.Connection({
    transports: [{ type: 'longpoll', url: opts.url }],
    realm: opts.realm,
    max_retries: 0,
    retry_if_unreachable: false,
    use_es6_promises: true,
  });
  connection.onopen = (session, details) => {
    opened = true;
    joined.resolve({ session, details });
  };
  connection.onclose = (reason, details) => {
    if (!opened) joined.reject(new Error(`could not join over long-poll: ${reason} ${JSON.stringify(details)}`));
    closed.resolve({ reason, details });
    return true;
  };
  step('connect+join over long-poll');
  connection.open();
  const { session, details } = await within(10000, joined.promise, 'join');
  const transport = { ...connection.transport.info };

  const got = deferred();
  step('subscribe');
  await within(5000, session.subscribe(`${opts.prefix}.topic`, (args, kwargs, d) => {
    got.resolve({ args: describe(args || []), kwargs: describe(kwargs || {}), publication: d.publication });
  }), 'subscribe');
  emit({ status: 'ready', session: session.id, transport });

  step('wait for the event');
  const event = await within(10000, got.promise, 'event');

  step('call');
  const res = await within(5000, session.call(`${opts.prefix}.add2`, [2, 3], { k: 'v' }), 'call');
  const call = res instanceof ab.Result ? { args: describe(res.args), kwargs: describe(res.kwargs) } : { value: describe(res) };

  step('publish');
  const pub = await within(5000, session.publish(`${opts.prefix}.back`, ['from-js'], { n: 1 }, { acknowledge: true }), 'publish');

  step('leave');
  connection.close('wamp.close.normal', 'done');
  const c = await within(5000, closed.promise, 'close');
  shutdown();
  return {
    client: lib, client_version: ab.version, session: session.id, transport,
    event, call, publication: pub.id, close: { reason: c.reason }, xhr: stats,
  };
});
