"""Entry point of a native worker process.

The node controller runs ``python -m wampfabric.worker --type router --id
router1 --cbdir DIR --node NODE_ID --wamp-fds R,W --controller-pid PID``
(or ``wampfabric _exec_worker ...`` from a frozen executable).  The worker:

1. asks the kernel to send it SIGTERM when the controller dies
   (``prctl(PR_SET_PDEATHSIG)`` on Linux) and exits at once if the
   controller is already gone;
2. writes its log lines to stdout (the controller prefixes nothing: lines
   already carry ``[Router    1234]``; anything else the process prints is
   prefixed by the controller);
3. joins realm ``crossbar`` on the node management router over the pipes
   ``--wamp-fds`` (see ``transport/stdio.py``) and runs its worker object
   (the type's class in the personality's ``NATIVE_WORKERS``, e.g. ``RouterWorker``) until
   ``shutdown`` is called, SIGTERM arrives, or the pipe reaches end of file
   (the controller is gone): then it releases everything and exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal

from ..common.pdeathsig import set_pdeathsig

log = logging.getLogger("wampfabric.worker")

STOP_TIMEOUT = 8.0


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="wampfabric.worker")
    p.add_argument("--type", required=True)
    p.add_argument("--id", required=True)
    p.add_argument("--cbdir", required=True)
    p.add_argument("--node", default="node1")
    p.add_argument("--realm", default="crossbar")
    p.add_argument("--personality", default="standalone")
    p.add_argument("--loglevel", default="info")
    p.add_argument("--wamp-fds", required=True, help="R,W: pipe fds carrying WAMP to/from the controller")
    p.add_argument("--controller-pid", type=int, default=0)
    p.add_argument("--title", default=None)
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    set_pdeathsig(signal.SIGTERM)
    if args.controller_pid and os.getppid() != args.controller_pid:
        return 1  # the controller died before we could ask to be told
    # Ctrl-C in a terminal reaches the whole process group: the controller
    # handles it and stops its workers in order
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    import json

    from ..common.logs import setup_logging
    from ..personality import PERSONALITIES, get_personality

    personality = get_personality(args.personality if args.personality in PERSONALITIES else "standalone")
    wtype = personality.NATIVE_WORKERS.get(args.type)
    kind = wtype["logname"] if wtype else args.type.capitalize()
    setup_logging(args.loglevel, kind=kind)
    if wtype is None:
        log.error("unknown native worker type '%s'", args.type)
        return 1
    # the worker options come in the environment (they may hold secrets), not on the command line
    options = json.loads(os.environ.pop("WAMPFABRIC_WORKER_OPTIONS", "{}") or "{}")
    rfd, wfd = (int(x) for x in args.wamp_fds.split(","))
    if options.get("cpu_affinity"):
        try:
            import psutil

            psutil.Process().cpu_affinity([int(c) for c in options["cpu_affinity"]])
            log.info("CPU affinity set to %s", options["cpu_affinity"])
        except (AttributeError, ValueError, OSError) as e:
            log.warning("cannot set CPU affinity %s: %s", options["cpu_affinity"], e)

    try:
        import uvloop
    except ImportError:  # pragma: no cover
        uvloop = None
    coro = run(args, personality, wtype, options, rfd, wfd)
    if uvloop is not None and args.type != "container":
        return uvloop.run(coro)
    # containers run the stock asyncio loop: Twisted's asyncio reactor needs it
    return asyncio.run(coro)


async def run(args, personality, wtype, options: dict, rfd: int, wfd: int) -> int:
    from ..transport.stdio import connect_stdio_client
    from ..common.gctune import tune_gc

    loop = asyncio.get_running_loop()
    session = await connect_stdio_client(rfd, wfd)
    try:
        await session.join(args.realm)
    except Exception as e:
        log.error("cannot join the node management realm: %s", e)
        return 1
    cls = wtype["class"]
    if isinstance(cls, str):
        import importlib

        mod, _, name = cls.rpartition(".")
        cls = getattr(importlib.import_module(mod), name)
    worker = cls(session, args.id, args.node, args.cbdir, personality, options)

    def on_sigterm():
        # a second SIGTERM (e.g. to the whole process group and from the controller) changes
        # nothing: the stop already runs, bounded by STOP_TIMEOUT
        worker._shutdown_requested = True
        worker.request_exit(0, "SIGTERM received")

    loop.add_signal_handler(signal.SIGTERM, on_sigterm)
    if args.type == "router":
        from ..transport import busypoll

        # before the transports start: their write coalescers pick up the poller
        busypoll.install(loop, options.get("busy_poll_us", busypoll.DEFAULT_MAX_US))
    session.on_leave.append(lambda reason: worker.request_exit(1, f"lost the node controller ({reason})"))
    try:
        await worker.start()
    except Exception as e:
        log.error("worker start failed: %s: %s", type(e).__name__, e)
        return 1
    if args.type == "router":
        tune_gc()
    code = await worker.wait()
    # a stop that hangs must not keep an orphan alive
    loop.call_later(STOP_TIMEOUT, os._exit, code or 1)
    await worker.stop()
    log.info("%s worker '%s' stopped (exit code %d)", wtype["logname"], args.id, code)
    return code
