#!/usr/bin/env node
// autobahn-js / wampy callee for compat/scenarios/callee_modes.py.
//
// usage: node callee.mjs --lib autobahn|wampy --url URL --serializer S --prefix P
//
// Registers P.progress ([n] -> n progressive results [i] {step: i}, then
// final ["done", n] {final: true}), P.slow (answers "finished" after 1.5 s)
// and P.echo.  Prints {"status": "ready"}, serves until stdin closes, then
// prints the result line {"ok": true, "invocations": [...]}.  The clients'
// own libraries are loaded from tests/js (tests/js/README.md).

import { run, step, emit, within, deferred } from '../../tests/js/lib/harness.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function startAutobahn(opts, log) {
  const { loadAutobahn, connect, disconnect } = await import('../../tests/js/lib/autobahn_client.mjs');
  const ab = await loadAutobahn(opts.lib);
  const conn = await connect(ab, { ...opts, label: 'callee' });
  const s = conn.session;
  await s.register(`${opts.prefix}.progress`, async (args, kwargs, details) => {
    log.push({ proc: 'progress', receive_progress: Boolean(details && details.progress) });
    for (let i = 0; i < args[0]; i++) {
      if (details && details.progress) details.progress([i], { step: i });
    }
    return new ab.Result(['done', args[0]], { final: true });
  });
  await s.register(`${opts.prefix}.slow`, async () => {
    const entry = { proc: 'slow' };
    log.push(entry);
    emit({ invoked: 'slow' }); // the caller cancels only after this line
    await sleep(1500);
    entry.end = 'finished';
    return 'finished';
  });
  await s.register(`${opts.prefix}.echo`, (args, kwargs) => new ab.Result(args, kwargs));
  return { close: () => disconnect(conn, 'callee'), closed: conn.closed };
}

async function startWampy(opts, log) {
  const { connect, disconnect } = await import('../../tests/js/lib/wampy_client.mjs');
  const conn = await connect({ ...opts, label: 'callee' });
  const w = conn.w;
  await w.register(`${opts.prefix}.progress`, async ({ argsList, details, result_handler }) => {
    const wants = Boolean(details && details.receive_progress);
    log.push({ proc: 'progress', receive_progress: wants });
    for (let i = 0; i < argsList[0]; i++) {
      if (wants) result_handler({ options: { progress: true }, argsList: [i], argsDict: { step: i } });
    }
    return { argsList: ['done', argsList[0]], argsDict: { final: true } };
  });
  await w.register(`${opts.prefix}.slow`, async () => {
    const entry = { proc: 'slow' };
    log.push(entry);
    emit({ invoked: 'slow' }); // the caller cancels only after this line
    await sleep(1500);
    entry.end = 'finished';
    return { argsList: ['finished'] };
  });
  await w.register(`${opts.prefix}.echo`, ({ argsList, argsDict }) => ({ argsList, argsDict }));
  return { close: () => disconnect(conn), closed: conn.closed };
}

run(async (opts) => {
  const log = [];
  const stdinClosed = deferred();
  process.stdin.on('end', () => stdinClosed.resolve('stdin closed'));
  process.stdin.resume();
  step('start callee');
  const callee = opts.lib === 'wampy' ? await startWampy(opts, log) : await startAutobahn(opts, log);
  emit({ status: 'ready' });
  step('serving');
  await stdinClosed.promise;
  try { await within(3000, callee.close(), 'close'); } catch (e) { /* closing is not under test */ }
  return { invocations: log };
}, { timeout: 60 });
