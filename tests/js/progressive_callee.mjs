#!/usr/bin/env node
// A JavaScript callee streaming progressive call results (advanced/rpc_progressive_call_results).
// autobahn-js and wampy announce no call_canceling as callees, so a router following the
// specification's strict rule would never let them stream; tests/router/test_dealer_progressive.py
// checks that wampfabric does (by default), and what happens when the caller leaves or cancels.
//
// usage: node progressive_callee.mjs --lib autobahn|autobahn26|wampy --url ws://... \
//            --realm realm1 --serializer json|msgpack|cbor --prefix com.x.y [--timeout 30]
//
// Registers, under PREFIX:
//   .stream   [n]            -> progressive results 0 .. n-1 (if the caller asked for them), then "done"
//   .endless  [ms, max]      -> a progressive result every `ms` milliseconds, `max` of them, then
//                               "end"; keeps streaming after the caller left or canceled (neither
//                               client can be interrupted), so the router must drop those YIELDs
//
// Prints {"status": "ready", ...}; for each finished invocation a line
// {"event": "finished", "procedure": ..., "receive_progress": bool, "sent": n}.  Runs until stdin
// is closed (or SIGTERM), leaves and prints the final result line
// {"ok": true, "finished": [...], "close": ...}.

import { run, step, emit, within, deferred, check } from './lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The procedures, client-neutral: (args, details, progress|null) -> Promise<final args>. */
function procedures(finished) {
  return {
    stream: async (args, progress) => {
      const n = args[0];
      let sent = 0;
      if (progress) {
        for (let i = 0; i < n; i++) {
          progress([i]);
          sent++;
        }
      }
      finished({ procedure: 'stream', receive_progress: !!progress, sent });
      return ['done'];
    },
    endless: async (args, progress) => {
      const [ms, max] = args;
      let sent = 0;
      for (let i = 0; progress && i < max; i++) {
        await sleep(ms);
        progress([i]);
        sent++;
      }
      finished({ procedure: 'endless', receive_progress: !!progress, sent });
      return ['end'];
    },
  };
}

async function startAutobahn(opts, procs) {
  const { loadAutobahn, clientInfo, connect, disconnect } = await import('./lib/autobahn_client.mjs');
  const ab = await loadAutobahn(opts.lib);
  const conn = await connect(ab, { ...opts, label: 'callee' });
  for (const [name, fn] of Object.entries(procs)) {
    step(`register ${name}`);
    await within(5000, conn.session.register(`${opts.prefix}.${name}`, async (args, kwargs, details) => {
      // autobahn-js offers details.progress only when the INVOCATION carries receive_progress
      const progress = details && details.progress ? (a) => details.progress(a) : null;
      return new ab.Result(await fn(args || [], progress));
    }), `register ${name}`);
  }
  return {
    info: { ...clientInfo(ab, opts.lib, opts.url), protocol: conn.protocol, session: conn.session.id },
    close: () => disconnect(conn, 'callee'),
    closed: conn.closed,
  };
}

async function startWampy(opts, procs) {
  const { clientInfo, connect, disconnect } = await import('./lib/wampy_client.mjs');
  const conn = await connect({ ...opts, label: 'callee' });
  for (const [name, fn] of Object.entries(procs)) {
    step(`register ${name}`);
    await within(5000, conn.w.register(`${opts.prefix}.${name}`, async ({ argsList, details, result_handler }) => {
      // wampy sends YIELD with the options given to result_handler
      const progress = details && details.receive_progress
        ? (a) => result_handler({ argsList: a, options: { progress: true } }) : null;
      return { argsList: await fn(argsList || [], progress) };
    }), `register ${name}`);
  }
  return {
    info: { ...clientInfo(), protocol: conn.protocol },
    close: () => disconnect(conn),
    closed: conn.closed,
  };
}

run(async (opts) => {
  check(opts.prefix, '--prefix is required');
  const lib = opts.lib ?? 'autobahn';
  const done = [];
  const procs = procedures((rec) => { done.push(rec); emit({ event: 'finished', ...rec }); });
  const stdinClosed = deferred();
  process.stdin.on('end', () => stdinClosed.resolve('stdin closed'));
  process.stdin.on('error', () => stdinClosed.resolve('stdin error'));
  process.stdin.resume();
  process.on('SIGTERM', () => stdinClosed.resolve('SIGTERM'));

  step('start callee');
  const callee = lib === 'wampy' ? await startWampy(opts, procs) : await startAutobahn({ ...opts, lib }, procs);
  let lost = null;
  callee.closed.then((why) => { lost = why; stdinClosed.resolve('connection lost'); });
  emit({ status: 'ready', lib, serializer: opts.serializer, prefix: opts.prefix, ...callee.info });

  step('serving (waiting for stdin to close)');
  const why = await stdinClosed.promise;
  check(lost === null, 'the router closed the callee\'s connection', lost);
  const close = await callee.close();
  return { status: 'done', stopped_by: why, finished: done, close, ...callee.info };
});
