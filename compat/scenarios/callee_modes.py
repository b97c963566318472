"""Progressive results and call cancelling, with each client library as the callee.

    python callee_modes.py CLIENT URL SERIALIZER

CLIENT is autobahn-python, autobahn or wampy.  The callee (py_callee.py or
compat/js/callee.mjs) joins over URL with SERIALIZER and registers its procedures;
the caller is a raw WAMP peer (tests/support/wamp_raw.py, RawSocket + JSON on the node's
RawSocket port) so that the options on the wire are exactly the ones under test
(receive_progress, CANCEL modes skip / kill / killnowait).  Prints one JSON line:
for each step, the messages the caller received (type, progress flag, payload or
error URI), and at the end what the callee saw.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "support"))
import wamp_raw as W  # noqa: E402

P = os.environ.get("COMPAT_PREFIX", "ptest")
PORTS = json.loads(os.environ.get("COMPAT_PORTS", "{}"))
CANCEL = 49
NAMES = {W.RESULT: "RESULT", W.ERROR: "ERROR", W.GOODBYE: "GOODBYE", W.ABORT: "ABORT"}


def callee_command(client: str, url: str, serializer: str, prefix: str) -> list[str]:
    if client == "autobahn-python":
        return [sys.executable, "-u", str(HERE / "py_callee.py"), url, serializer, prefix]
    return [shutil.which("node"), str(HERE.parent / "js" / "callee.mjs"), "--lib", client, "--url", url,
            "--serializer", serializer, "--prefix", prefix, "--timeout", "90"]


def describe(msg):
    if msg is None:
        return "closed"
    kind = NAMES.get(msg[0], msg[0])
    if msg[0] == W.RESULT:
        return {"type": kind, "progress": bool(msg[2].get("progress")), "args": msg[3] if len(msg) > 3 else None,
                "kwargs": msg[4] if len(msg) > 4 else None}
    if msg[0] == W.ERROR:
        return {"type": kind, "error": msg[4]}
    return {"type": kind}


def collect(peer, request_id, window: float):
    """Messages about request_id (and anything else) until a final answer, then a quiet window."""
    got = []
    deadline = time.monotonic() + window
    final_seen = False
    while time.monotonic() < deadline:
        try:
            msg = peer.recv(max(0.01, deadline - time.monotonic()))
        except TimeoutError:
            break
        if msg is None:
            got.append("closed")
            break
        got.append(describe(msg))
        if msg[0] == W.ERROR or (msg[0] == W.RESULT and not msg[2].get("progress")):
            if not final_seen:
                final_seen = True
                deadline = min(deadline, time.monotonic() + 0.3)  # anything after the final answer?
    return got


def main():
    client, url, serializer = sys.argv[1:4]
    proc = subprocess.Popen(callee_command(client, url, serializer, P), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    lines = []
    ready = threading.Event()
    invoked = threading.Semaphore(0)  # one release per "invoked" line of the callee

    def reader():
        for line in proc.stdout:
            lines.append(line)
            if '"status": "ready"' in line or '"status":"ready"' in line:
                ready.set()
            if '"invoked"' in line:
                invoked.release()
        ready.set()

    threading.Thread(target=reader, daemon=True).start()
    out = {}
    try:
        if not ready.wait(20) or proc.poll() is not None:
            print(json.dumps({"callee.start": {"failed": "".join(lines)[-500:] + proc.stderr.read()[-500:]
                                               if proc.poll() is not None else "no ready line"}}))
            return
        peer = W.RawSocketPeer(port=PORTS["RS_PORT"], serializer="json")
        roles = {"caller": {"features": {"progressive_call_results": True, "call_canceling": True}}}
        welcome = peer.hello("realm1", {"roles": roles})
        assert welcome[0] == W.WELCOME, welcome
        steps = [
            ("progress.receive_progress", [W.CALL, None, {"receive_progress": True}, f"{P}.progress", [3]], None),
            ("progress.plain", [W.CALL, None, {}, f"{P}.progress", [2]], None),
            ("progress.zero", [W.CALL, None, {"receive_progress": True}, f"{P}.progress", [0]], None),
            ("cancel.skip", [W.CALL, None, {}, f"{P}.slow", []], "skip"),
            ("cancel.kill", [W.CALL, None, {}, f"{P}.slow", []], "kill"),
            ("cancel.killnowait", [W.CALL, None, {}, f"{P}.slow", []], "killnowait"),
            ("cancel.default_mode", [W.CALL, None, {}, f"{P}.slow", []], ""),
            ("after_cancels.echo", [W.CALL, None, {}, f"{P}.echo", ["still", "there"], {"k": 1}], None),
        ]
        for name, msg, mode in steps:
            rid = peer.next_id()
            msg[1] = rid
            try:
                peer.send(msg)
                if mode is not None:
                    # cancel once the callee runs the invocation (not before it got there)
                    if not invoked.acquire(timeout=5):
                        out[name + ".invocation"] = "callee not invoked within 5 s"
                    time.sleep(0.1)
                    peer.send([CANCEL, rid, {"mode": mode} if mode else {}])
                out[name] = collect(peer, rid, 4.0)
            except (OSError, W.Closed) as e:
                out[name] = {"exception": type(e).__name__}
            if mode is not None:
                time.sleep(1.5)  # let a skipped invocation finish before the next step
        try:
            peer.goodbye()
        except Exception:  # noqa: BLE001
            pass
        peer.close()
    finally:
        try:
            proc.stdin.close()
        except OSError:
            pass
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    time.sleep(0.1)
    final = None
    for line in reversed(lines):
        if line.startswith("{") and "invocations" in line:
            final = json.loads(line)
            break
    out["callee.saw"] = final.get("invocations") if final else {"no final line": proc.returncode}
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
