#!/usr/bin/env python3
"""Differential check: the same client scenarios against Crossbar.io and wampfabric.

    python compat/run.py [--routers crossbar,wampfabric] [--only GLOB] [--jobs N] [--report FILE]

One node directory (compat/nodedir: .crossbar/config.json, the container's backend
component and the guest program) is instantiated once on free ports; Crossbar.io
(``crossbar start --cbdir``) and then wampfabric (``wampfabric start --cbdir``) run it
in turn.  Against each, the client jobs run (autobahn-python, autobahn-js, wampy; json,
msgpack, cbor; WebSocket and RawSocket): each job is a client process printing one JSON
line ``{scenario: outcome}``.  Outcomes are normalized (session IDs, request IDs,
timestamps, the job's random URI prefix, routers' human-readable error texts) and
compared per ``client/serializer/transport/scenario``.  Every differing outcome is
printed with both sides; the exit code is 1 when a difference is not listed in
compat/deliberate.json (each entry names a glob over the keys and the reason).

With a single router (``--routers wampfabric``) nothing is compared: the outcomes are
printed (or written with --report), and the exit code says whether every job ran.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import fnmatch
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
# routers are started as bench/ starts them (bench/routers.py: commands from WAMPFABRIC_CMD and
# CROSSBAR_CMD); free ports and the Node.js clients are the test suite's (tests/support)
sys.path.insert(0, str(REPO / "bench"))
import pytest  # noqa: E402  (support.js reports a failed npm install with pytest.fail)
from routers import RouterProcess as BenchRouter  # noqa: E402
from routers import free_port, missing_command  # noqa: E402
from support.js import JS_DIR as JS_LIB  # noqa: E402
from support.js import NODE, install_deps, last_json_line, node_flags  # noqa: E402

PYTHON = sys.executable

PORT_NAMES = ["WEB_PORT", "RS_PORT", "BACKEND_PORT", "AUTH_STATIC_PORT", "AUTH_DYNAMIC_PORT", "AUTH_DYNAMIC_RS_PORT",
              "AUTH_COOKIE_PORT", "AUTH_TLS_STATIC_PORT", "AUTH_TLS_DYNAMIC_PORT"]
SERIALIZERS = ["json", "msgpack", "cbor"]
JOB_TIMEOUT = 120

# fixed test credentials (they only protect a throw-away node on 127.0.0.1)
CS_SEED = hashlib.sha256(b"wampfabric compat cryptosign").hexdigest()
SECRETS = {
    "CRA_SECRET": "cra-secret-456",
    "CRA_SALTED_PASSWORD": "cra-salted-password",
    "CRA_SALT": "salt123",
    "CRA_ITERATIONS": 100,
    "CRA_KEYLEN": 32,
    "SCRAM_PASSWORD": "scram-password",
    "CS_SEED": CS_SEED,
}


# ---------------------------------------------------------------------------------------------
# node directory


def make_secrets() -> dict:
    import nacl.signing
    from autobahn.wamp.auth import derive_scram_credential

    s = dict(SECRETS)
    s["CS_PUBKEY"] = nacl.signing.SigningKey(bytes.fromhex(CS_SEED)).verify_key.encode().hex()
    s["SCRAM_CREDENTIAL"] = derive_scram_credential("dyn-scram", s["SCRAM_PASSWORD"])
    s["SCRAM_STATIC_CREDENTIAL"] = derive_scram_credential("scram-user", s["SCRAM_PASSWORD"])
    return s


def make_pki(d: Path) -> str:
    """A CA, a server certificate for localhost and a client certificate (for the tls authmethod)
    in d; returns the client certificate's SHA1 fingerprint as Crossbar.io writes it."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)

    def cert(cn, issuer=None, issuer_key=None, ca=False, san=None):
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
        b = (x509.CertificateBuilder().subject_name(name).issuer_name(issuer.subject if issuer else name)
             .public_key(key.public_key()).serial_number(x509.random_serial_number())
             .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=2))
             .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
        if san:
            b = b.add_extension(x509.SubjectAlternativeName([x509.DNSName(san)]), critical=False)
        return b.sign(issuer_key or key, hashes.SHA256()), key

    d.mkdir(parents=True, exist_ok=True)
    ca, ca_key = cert("compat CA", ca=True)
    server, server_key = cert("localhost", ca, ca_key, san="localhost")
    client, client_key = cert("compat-client", ca, ca_key)
    for name, obj in (("ca.pem", ca), ("server.pem", server), ("client.pem", client)):
        (d / name).write_bytes(obj.public_bytes(serialization.Encoding.PEM))
    for name, key in (("server.key", server_key), ("client.key", client_key)):
        (d / name).write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
        os.chmod(d / name, 0o600)
    return ":".join(f"{b:02X}" for b in client.fingerprint(hashes.SHA1()))


def instantiate_nodedir(target: Path, ports: dict, sec: dict) -> Path:
    """Copy compat/nodedir to target and fill in the placeholders; returns the cbdir."""
    shutil.copytree(HERE / "nodedir", target, dirs_exist_ok=True)
    cbdir = target / ".crossbar"
    text = (cbdir / "config.json").read_text()
    values = dict(ports)
    values["PYTHON"] = PYTHON
    values["NODEDIR"] = str(target)
    values["BACKEND_PORT_STR"] = str(ports["BACKEND_PORT"])
    values["CS_PUBKEY"] = sec["CS_PUBKEY"]
    values["CLIENT_SHA1"] = make_pki(target / "pki")
    values["SCRAM_PRINCIPAL"] = dict(sec["SCRAM_STATIC_CREDENTIAL"], role="user")
    for name, value in values.items():
        text = text.replace(f'"${{{name}}}"', json.dumps(value))  # a whole JSON value
        if isinstance(value, str):
            text = text.replace(f"${{{name}}}", value)  # inside a string
    if "${" in text:
        raise SystemExit(f"compat/nodedir config: unfilled placeholder near {text[text.index('${'):][:40]!r}")
    (cbdir / "config.json").write_text(text)
    with open(target / "compat_secrets.py", "w") as f:
        f.write("# written by compat/run.py\n")
        for k, v in sec.items():
            f.write(f"{k} = {v!r}\n")
    return cbdir


class RouterProcess(BenchRouter):
    """A router on the compat node directory: ready once every port is open and the container's
    backend and the guest answer (scenarios/probe.py)."""

    stop_timeout = 20.0

    def __init__(self, router: str, cbdir: Path, ports: dict, logdir: Path):
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.pop("WAMPFABRIC_TEST_AGAINST", None)
        super().__init__(router, cbdir, logdir / f"{router}.log", env=env)
        self.ports = ports

    def start(self, timeout: float = 90.0) -> None:
        super().start()
        deadline = time.monotonic() + timeout
        for name in PORT_NAMES:
            self.wait_port(self.ports[name], deadline)
        # the container's backend and the guest register their procedures after the ports open
        probe = [PYTHON, str(HERE / "scenarios" / "probe.py"), f"rs://127.0.0.1:{self.ports['RS_PORT']}",
                 str(max(5, deadline - time.monotonic()))]
        r = subprocess.run(probe, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{self.target}: backend/guest not ready: {r.stdout[-500:]}{r.stderr[-1500:]}\n"
                               f"--- log:\n{self.log()[-3000:]}")


# ---------------------------------------------------------------------------------------------
# jobs


def js_auth_cases(ports: dict, serializer: str, sec: dict) -> list[dict]:
    st = f"ws://127.0.0.1:{ports['AUTH_STATIC_PORT']}/"
    dy = f"ws://127.0.0.1:{ports['AUTH_DYNAMIC_PORT']}/"
    base = {"realm": "realm1", "serializer": serializer}
    cases = [
        ("static.ticket.ok", st, "ticket", "ticket-user", {"ticket": "secret-ticket-123"}),
        ("static.ticket.wrong", st, "ticket", "ticket-user", {"ticket": "nope"}),
        ("static.ticket.unknown_authid", st, "ticket", "nobody", {"ticket": "x"}),
        ("static.wampcra.ok", st, "wampcra", "cra-user", {"secret": sec["CRA_SECRET"]}),
        ("static.wampcra.wrong", st, "wampcra", "cra-user", {"secret": "wrong"}),
        ("static.wampcra.salted", st, "wampcra", "cra-salted", {"secret": sec["CRA_SALTED_PASSWORD"]}),
        ("static.cryptosign.ok", st, "cryptosign", "cs-user", {"seed": CS_SEED}),
        ("static.cryptosign.unknown_key", st, "cryptosign", "cs-user", {"seed": "11" * 32}),
        ("dynamic.ticket.ok", dy, "ticket", "dyn-ticket", {"ticket": "dyn-ticket-secret"}),
        ("dynamic.ticket.wrong", dy, "ticket", "dyn-ticket", {"ticket": "nope"}),
        ("dynamic.wampcra.ok", dy, "wampcra", "dyn-cra", {"secret": sec["CRA_SECRET"]}),
        ("dynamic.wampcra.salted", dy, "wampcra", "dyn-cra-salted", {"secret": sec["CRA_SALTED_PASSWORD"]}),
        ("dynamic.wampcra.unknown", dy, "wampcra", "nobody", {"secret": "x"}),
        ("dynamic.cryptosign.ok", dy, "cryptosign", None, {"seed": CS_SEED}),
        ("dynamic.cryptosign.unknown_key", dy, "cryptosign", None, {"seed": "22" * 32}),
    ]
    out = []
    for name, url, method, authid, extra in cases:
        c = dict(base, name=name, url=url, method=method, **extra)
        if authid is not None:
            c["authid"] = authid
        out.append(c)
    return out


class Job:
    def __init__(self, key: str, argv: list[str], env: dict | None = None, cwd: Path | None = None):
        self.key = key  # client/serializer/transport/kind
        self.argv = argv
        self.env = env or {}
        self.cwd = cwd


def make_jobs(ports: dict, sec: dict, nodedir: Path) -> list[Job]:
    ws = f"ws://127.0.0.1:{ports['WEB_PORT']}/ws"
    rs = f"rs://127.0.0.1:{ports['RS_PORT']}"
    common = {"COMPAT_PORTS": json.dumps(ports), "COMPAT_NODEDIR": str(nodedir)}
    jobs = []
    py = str(HERE / "scenarios" / "pyclient.py")
    callee = str(HERE / "scenarios" / "callee_modes.py")
    for ser in SERIALIZERS:
        for tname, url in (("ws", ws), ("rs", rs)):
            jobs.append(Job(f"autobahn-python/{ser}/{tname}/client", [PYTHON, py, "client", url, ser], common))
            jobs.append(Job(f"autobahn-python/{ser}/{tname}/callee", [PYTHON, callee, "autobahn-python", url, ser],
                            common))
        jobs.append(Job(f"autobahn-python/{ser}/ws/auth", [PYTHON, py, "auth", ws, ser], common))
    jobs.append(Job("autobahn-python/json/rs/auth", [PYTHON, py, "auth", rs, "json"], common))
    if NODE is not None:
        scen = str(HERE / "js" / "scenarios.mjs")
        auth = str(JS_LIB / "auth_scenarios.mjs")
        for lib in ("autobahn", "wampy"):
            for ser in SERIALIZERS:
                flags = node_flags(lib)
                jobs.append(Job(f"{lib}-js/{ser}/ws/client",
                                [NODE, *flags, scen, "--lib", lib, "--url", ws, "--serializer", ser,
                                 "--timeout", "110"], common))
                jobs.append(Job(f"{lib}-js/{ser}/ws/callee", [PYTHON, callee, lib, ws, ser], common))
        jobs.append(Job("autobahn-js/json/rs/client",
                        [NODE, scen, "--lib", "autobahn", "--url", rs, "--serializer", "json", "--timeout", "110"],
                        common))
        jobs.append(Job("autobahn-js/json/rs/callee", [PYTHON, callee, "autobahn", rs, "json"], common))
        # one autobahn-js auth job: its ~7 failing cases all come from 127.0.0.1, and wampfabric
        # throttles more than 10 failures per address and minute (the Python jobs use other addresses)
        for ser in ("json",):
            cases = js_auth_cases(ports, ser, sec)
            jobs.append(Job(f"autobahn-js/{ser}/ws/auth",
                            [NODE, auth, "--lib", "autobahn", "--url", "ws://unused", "--timeout", "110"],
                            dict(common, WAMP_AUTH_CASES=json.dumps(cases))))
        for ser in SERIALIZERS:  # wampy connects each case from an address of its own
            jobs.append(Job(f"wampy-js/{ser}/ws/auth",
                            [NODE, str(HERE / "js" / "wampy_auth.mjs"), "--url", "ws://unused", "--timeout", "110"],
                            dict(common, WAMP_AUTH_CASES=json.dumps(js_auth_cases(ports, ser, sec)))))
    return jobs


def run_job(job: Job) -> dict:
    prefix = "p" + secrets.token_hex(5)
    env = dict(os.environ, **job.env, COMPAT_PREFIX=prefix, PYTHONUNBUFFERED="1")
    try:
        r = subprocess.run(job.argv, capture_output=True, text=True, env=env, timeout=JOB_TIMEOUT,
                           cwd=job.cwd or REPO, stdin=subprocess.DEVNULL)
        out, err, rc = r.stdout, r.stderr, r.returncode
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        err = e.stderr.decode() if isinstance(e.stderr, bytes) else (e.stderr or "")
        rc = "timeout"
    result = last_json_line(out)
    if result is None:
        return {"_job": {"failed": f"exit {rc}, no result line", "stderr": err[-1500:]}}
    if "results" in result and isinstance(result["results"], dict):  # tests/js/auth_scenarios.mjs
        result = {k: v for k, v in result["results"].items()}
    result.pop("ok", None)
    result.pop("elapsed_ms", None)
    return normalize(result, prefix)


# ---------------------------------------------------------------------------------------------
# normalization and comparison

RANDOM_AUTHID = re.compile(r"^[A-Z0-9]{4}(-[A-Z0-9]{4}){5}$")  # Crossbar.io's generated anonymous authids
ID_KEYS = {"session", "id", "request", "registration", "subscription", "publication", "caller", "publisher",
           "timestamp", "created", "nonce", "session_id", "pid", "started", "trustlevel",
           "x_cb_node", "x_cb_worker", "x_cb_peer", "x_cb_pid"}
ROUTER_ERROR_PREFIXES = ("wamp.error.", "wamp.close.", "crossbar.error.", "wamp.close")


def normalize(v, prefix: str, key: str | None = None):
    if isinstance(v, dict):
        out = {}
        is_router_error = any(isinstance(v.get(k), str) and v[k].startswith(ROUTER_ERROR_PREFIXES)
                              for k in ("error", "reason"))
        for k, x in v.items():
            if is_router_error and k in ("args", "message") and x:
                x = "<text>" if isinstance(x, str) else ["<text>" if isinstance(a, str) else a for a in x]
            out[k.replace(prefix, "<p>")] = normalize(x, prefix, k)
        return out
    if isinstance(v, list):
        return [normalize(x, prefix, key) for x in v]
    if key in ID_KEYS and (isinstance(v, int) and not isinstance(v, bool) or isinstance(v, str)):
        return "<id>"
    if isinstance(v, str):
        if RANDOM_AUTHID.match(v):
            return "<generated-authid>"
        return v.replace(prefix, "<p>")
    return v


def load_deliberate() -> list[dict]:
    path = HERE / "deliberate.json"
    if not path.exists():
        return []
    entries = json.loads(path.read_text())
    for e in entries:
        if not e.get("match") or not e.get("reason"):
            raise SystemExit(f"{path}: every entry needs 'match' (a glob) and 'reason': {e}")
    return entries


def deliberate_reason(key: str, entries: list[dict]) -> str | None:
    """The id (or the start of the reason) of the deliberate-difference entry matching key."""
    for e in entries:
        pats = e["match"] if isinstance(e["match"], list) else [e["match"]]
        if any(fnmatch.fnmatchcase(key, p) for p in pats):
            return e.get("id") or e["reason"][:80]
    return None


def flatten(results: dict) -> dict:
    """{job_key: {scenario: outcome}} -> {"client/ser/transport/kind/scenario": outcome}."""
    flat = {}
    for job_key, outcomes in results.items():
        for scen, outcome in outcomes.items():
            flat[f"{job_key}/{scen}"] = outcome
    return flat


def short(v, limit: int = 600) -> str:
    s = json.dumps(v, sort_keys=True, default=str)
    return s if len(s) <= limit else s[:limit] + f"... ({len(s)} chars)"


# ---------------------------------------------------------------------------------------------


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--routers", default="crossbar,wampfabric",
                    help="comma-separated, in the order they run (default: crossbar,wampfabric)")
    ap.add_argument("--only", action="append", default=[],
                    help="run only jobs whose key matches this glob (e.g. 'autobahn-python/json/ws/*'); repeatable")
    ap.add_argument("--jobs", type=int, default=int(os.environ.get("COMPAT_JOBS", "6")),
                    help="client jobs run in parallel (default 6: they mostly wait)")
    ap.add_argument("--report", help="write every outcome of every router (JSON) to this file")
    ap.add_argument("--keep", action="store_true", help="keep the node directory and router logs")
    args = ap.parse_args(argv)

    routers = [r.strip() for r in args.routers.split(",") if r.strip()]
    for r in routers:
        if r not in ("crossbar", "wampfabric"):
            ap.error(f"unknown router {r!r}")
    for r in routers:
        why = missing_command(r)
        if why:
            print(f"{why} (or `make compat`)", file=sys.stderr)
            return 2
    if NODE is None:
        print("note: `node` not found: the autobahn-js and wampy jobs are skipped", file=sys.stderr)
    else:
        try:
            install_deps()  # tests/js/node_modules (npm ci) when missing or older than the lockfile
        except pytest.fail.Exception as e:
            print(f"cannot install the JavaScript clients: {e}", file=sys.stderr)
            return 2

    root = Path(tempfile.mkdtemp(prefix="wf-compat-"))
    ports = {name: free_port() for name in PORT_NAMES}
    sec = make_secrets()
    cbdir = instantiate_nodedir(root / "node", ports, sec)
    jobs = make_jobs(ports, sec, root / "node")
    if args.only:
        jobs = [j for j in jobs if any(fnmatch.fnmatchcase(j.key, p) for p in args.only)]
    print(f"node directory {root / 'node'}; {len(jobs)} client jobs per router; routers: {', '.join(routers)}",
          flush=True)

    results: dict[str, dict] = {}
    failed_start = []
    t_all = time.monotonic()
    for router in routers:
        rp = RouterProcess(router, cbdir, ports, root)
        t0 = time.monotonic()
        try:
            rp.start()
        except RuntimeError as e:
            print(f"!! {router} did not start: {e}", flush=True)
            failed_start.append(router)
            rp.stop()
            continue
        t1 = time.monotonic()
        try:
            with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                outs = dict(zip([j.key for j in jobs], pool.map(run_job, jobs)))
        finally:
            rp.stop()
        results[router] = outs
        print(f"{router}: started in {t1 - t0:.1f}s, jobs ran in {time.monotonic() - t1:.1f}s", flush=True)

    if args.report:
        Path(args.report).write_text(json.dumps(results, indent=1, sort_keys=True, default=str))
    rc = 0
    if failed_start:
        rc = 1
    if len(results) == 1:
        (router, outs), = results.items()
        bad = {k: v for k, v in flatten(outs).items() if k.endswith("/_job")}
        if not args.report:
            for k, v in sorted(flatten(outs).items()):
                print(f"{router} {k}: {short(v)}")
        for k, v in bad.items():
            print(f"!! job failed: {k}: {short(v, 2000)}")
            rc = 1
    elif len(results) == 2:
        (ra, outs_a), (rb, outs_b) = results.items()
        fa, fb = flatten(outs_a), flatten(outs_b)
        entries = load_deliberate()
        diffs = deliberate = 0
        for key in sorted(set(fa) | set(fb)):
            a, b = fa.get(key, "<missing>"), fb.get(key, "<missing>")
            if json.dumps(a, sort_keys=True, default=str) == json.dumps(b, sort_keys=True, default=str):
                continue
            reason = deliberate_reason(key, entries)
            if reason:
                deliberate += 1
                print(f"\n== {key}   [deliberate: {reason}, see compat/deliberate.json]")
            else:
                diffs += 1
                print(f"\n!! {key}")
            print(f"   {ra:10}: {short(a)}")
            print(f"   {rb:10}: {short(b)}")
        for router, flat in ((ra, fa), (rb, fb)):
            for k, v in sorted(flat.items()):
                if k.endswith("/_job"):  # a job that printed no outcome line: never "equal"
                    print(f"\n!! job failed against {router}: {k}: {short(v, 2000)}")
                    rc = 1
        total = len(set(fa) | set(fb))
        print(f"\n{total} outcomes compared: {total - diffs - deliberate} equal, {deliberate} deliberate "
              f"differences, {diffs} unexplained differences ({time.monotonic() - t_all:.0f}s)")
        if diffs:
            rc = 1
    if args.keep:
        print(f"kept {root}")
    else:
        shutil.rmtree(root, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
