"""Running the Node.js client scripts of tests/js (autobahn-js 22 and 26, Wampy.js; pinned in
tests/js/package.json, locked in tests/js/package-lock.json).

``install_deps`` installs tests/js/node_modules with ``npm ci`` when it is missing or older than
package-lock.json (the ``js_deps`` fixture of tests/conftest.py calls it once per session);
``run_js`` runs a script and returns the JSON line it printed last.  Modules that need Node.js
call ``require_node()`` at import, which skips them where ``node`` is not installed."""

from __future__ import annotations

import fcntl
import functools
import hashlib
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

JS_DIR = Path(__file__).resolve().parents[1] / "js"
NODE = shutil.which("node")

JS_CLIENTS = ["autobahn", "autobahn26", "wampy"]
CLIENT_VERSION = {"autobahn": "22.11.1", "autobahn26": "26.3.1", "wampy": "8.0.2"}
# what the scripts import besides the clients (installed with them by npm ci)
JS_PACKAGES = [*JS_CLIENTS, "tweetnacl", "crypto-js", "ws"]

SCRIPT_TIMEOUT = 40  # the scripts time themselves out after 15 s; this is the backstop
NPM_CI_TIMEOUT = 600


def require_node(what: str = "JavaScript client interop tests") -> None:
    """Skip the calling test module where Node.js is not installed."""
    if NODE is None:
        pytest.skip(f"Node.js is not installed (no `node` on PATH): {what} skipped", allow_module_level=True)


def _npm_ci_needed() -> bool:
    installed = JS_DIR / "node_modules" / ".package-lock.json"  # written by npm at the end of an install
    lock = JS_DIR / "package-lock.json"
    if not installed.exists():
        return True
    if installed.stat().st_mtime < lock.stat().st_mtime:
        return True
    return any(not (JS_DIR / "node_modules" / name / "package.json").exists() for name in JS_PACKAGES)


def install_deps() -> Path:
    """tests/js/node_modules installed from the lockfile (npm ci); parallel pytest processes install once."""
    lock_path = Path(tempfile.gettempdir()) / f"wampfabric-npm-{hashlib.sha1(str(JS_DIR).encode()).hexdigest()[:12]}.lock"
    with open(lock_path, "w") as lockf:
        fcntl.flock(lockf, fcntl.LOCK_EX)
        if _npm_ci_needed():
            npm = shutil.which("npm")
            if npm is None:
                pytest.fail("`node` is installed but `npm` is not: cannot install tests/js dependencies")
            cmd = [npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
            try:
                proc = subprocess.run(cmd, cwd=JS_DIR, capture_output=True, text=True, timeout=NPM_CI_TIMEOUT)
            except subprocess.TimeoutExpired as e:
                pytest.fail(f"`{' '.join(cmd)}` in {JS_DIR} timed out after {NPM_CI_TIMEOUT}s:\n{e.stderr}")
            if proc.returncode != 0:
                pytest.fail(f"`{' '.join(cmd)}` in {JS_DIR} failed ({proc.returncode}):\n"
                            f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return JS_DIR / "node_modules"


@functools.cache
def _node_typeof_websocket(*flags: str) -> str:
    try:
        out = subprocess.run([NODE, *flags, "-e", "process.stdout.write(typeof WebSocket)"],
                             capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "timeout"
    return out.stdout.strip() if out.returncode == 0 else "error"


def node_flags(lib: str) -> list[str]:
    """autobahn-js 26 wants the global WebSocket: enable it on Node 20/21 where it is experimental."""
    if lib != "autobahn26" or _node_typeof_websocket() == "function":
        return []
    if _node_typeof_websocket("--experimental-websocket") == "function":
        return ["--experimental-websocket"]
    return []  # the script installs `ws` as globalThis.WebSocket


def last_json_line(text: str) -> dict | None:
    """The last line of *text* that is a JSON object (a script's result line), or None."""
    for line in reversed(text.splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                return json.loads(line)
            except ValueError:
                continue
    return None


def run_js(node, script: str, *args: str, lib: str = "autobahn", timeout: float = SCRIPT_TIMEOUT) -> dict:
    """Run a Node script, return its JSON result; fail the test with the script's reason otherwise."""
    cmd = [NODE, *node_flags(lib), str(JS_DIR / script), *args]
    try:
        proc = subprocess.run(cmd, cwd=JS_DIR, capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        pytest.fail(f"{script} {' '.join(args)} did not finish within {timeout}s\n"
                    f"stdout: {e.stdout!r}\nstderr: {e.stderr!r}\nrouter log:\n{node.log()[-3000:]}")
    result = last_json_line(proc.stdout)
    if proc.returncode != 0 or result is None or not result.get("ok"):
        reason = result.get("error") if result else "no JSON result line"
        pytest.fail(f"{script} {' '.join(args)} failed (exit {proc.returncode}): {reason}\n"
                    f"result: {json.dumps(result)[:3000]}\nstderr (tail): {proc.stderr[-3000:]}\n"
                    f"router log (tail):\n{node.log()[-3000:]}")
    return result
