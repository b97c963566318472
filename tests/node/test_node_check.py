"""``wampfabric check`` reports every error of a config (each independent item on its own), and
what start would refuse that the node directory tells: listening ports and Unix socket paths used
twice, static directories, TLS files and guest executables that are not there.  ``start`` reports
the same errors the same way, and no command but ``init`` creates a node directory.  Through the CLI."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from support.nodecli import config, error_lines, realm, router, run_cli, run_start, write, ws
from support.nodes import free_port


# -- every error ------------------------------------------------------------------------------

MANY = config(
    router(ws(free_port()), {"type": "rawsocket", "endpoint": {"type": "tcp", "port": "8081"}},
           realms=[realm(), {"name": "bad realm"}]),
    {"type": "container", "components": [{"type": "class", "classname": "a.B", "realm": "realm1"}]},
    {"type": "guest", "executable": sys.executable, "options": {"stdout": "print"}},
    {"id": "w1", "type": "router", "components": [{"type": "class", "classname": "a.B", "realm": "nowhere"}]},
    {"id": "w1", "type": "container"},
    controller={"options": {"shutdown": ["shutdown_on_a_whim"]}},
)
MANY_ERRORS = [
    ("$.controller.options.shutdown[0]", "invalid shutdown trigger 'shutdown_on_a_whim'"),
    ("$.workers[0].realms[1].name", "invalid realm name 'bad realm'"),
    ("$.workers[0].transports[1].endpoint.port", "must be an integer, not string '8081'"),
    ("$.workers[1].components[0]", "missing mandatory attribute 'transport'"),
    ("$.workers[2].options.stdout", "must be one of: log, drop, close"),
    ("$.workers[3].components[0].realm", "no realm 'nowhere' on this router worker"),
    ("$.workers[4].id", "duplicate worker id 'w1'"),
]


def test_check_reports_every_error_one_line_each_and_start_the_same(tmp_path):
    cbdir = write(tmp_path, MANY)
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1 and "Traceback" not in r.stdout + r.stderr
    lines = error_lines(r.stderr, cbdir)
    assert len(lines) == len(MANY_ERRORS), r.stderr
    assert r.stderr.splitlines() == [f"Error: {line}" for line in lines]  # nothing else: one line per error
    for (path, words), line in zip(sorted(MANY_ERRORS), sorted(lines)):
        assert line.startswith(f"{cbdir / 'config.json'}: {path}: ") and words in line, (path, line)
    code, out = run_start(cbdir)
    assert code == 1 and "Traceback" not in out
    assert error_lines(out, cbdir) == lines
    assert all("Invalid node configuration: " in line for line in out.splitlines() if str(cbdir) in line)
    assert not (cbdir / "key.priv").exists() and not (cbdir / "node.pid").exists()


def test_one_error_is_still_one_line(tmp_path):
    cbdir = write(tmp_path, config(router(ws(free_port()), realms=[{"name": "bad realm"}])))
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1
    assert r.stderr == f"Error: {cbdir / 'config.json'}: $.workers[0].realms[0].name: invalid realm name " \
                       f"'bad realm' (must be a valid WAMP URI)\n"


# -- listening endpoints used twice --------------------------------------------------------------

P = free_port()
CLASHES = [
    ("same interface", config(router(ws(P), ws(P))), "$.workers[0].transports[1].endpoint.port"),
    ("all interfaces vs one", config(router(ws(P, None), ws(P))), "$.workers[0].transports[1].endpoint.port"),
    ("one vs all interfaces", config(router(ws(P)), router(ws(P, "0.0.0.0"))),
     "$.workers[1].transports[0].endpoint.port"),
    ("IPv6 wildcard is dual-stack", config(router(ws(P)), router(ws(P, None, version=6))),
     "$.workers[1].transports[0].endpoint.port"),
    ("web and rawsocket", config(router({"type": "web", "endpoint": {"type": "tcp", "port": P},
                                         "paths": {"/": {"type": "nodeinfo"}}},
                                        {"type": "rawsocket", "endpoint": {"type": "tcp", "port": P}})),
     "$.workers[0].transports[1].endpoint.port"),
    ("one shared, one not", config(router(ws(P, shared=True)), router(ws(P))),
     "$.workers[1].transports[0].endpoint.port"),
    ("unix path, relative and absolute", "unix", "$.workers[1].transports[0].endpoint.path"),
    ("unix path of the management socket", "mgmt", "$.controller.transport.endpoint.path"),
]


def unix_config(cbdir: Path, kind: str) -> dict:
    rs = {"type": "rawsocket", "endpoint": {"type": "unix", "path": "rs.sock"}}
    if kind == "unix":
        return config(router(rs), router({"type": "rawsocket", "endpoint": {"type": "unix",
                                                                            "path": str(cbdir / "rs.sock")}}))
    return config(router(rs), controller={"transport": {"type": "rawsocket",
                                                        "endpoint": {"type": "unix", "path": "./rs.sock"}}})


@pytest.mark.parametrize("name,cfg,path", CLASHES, ids=[c[0] for c in CLASHES])
def test_a_port_or_socket_used_twice_is_an_error(tmp_path, name, cfg, path):
    cbdir = tmp_path / ".crossbar"
    if isinstance(cfg, str):
        cfg = unix_config(cbdir, cfg)
    write(tmp_path, cfg)
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1, r.stdout + r.stderr
    lines = error_lines(r.stderr, cbdir)
    assert len(lines) == 1 and lines[0].startswith(f"{cbdir / 'config.json'}: {path}: "), r.stderr
    assert "is already used by $." in lines[0]
    code, out = run_start(cbdir)
    assert code == 1 and error_lines(out, cbdir) == lines


OK = [
    ("different interfaces", config(router(ws(P, "127.0.0.1"), ws(P, "127.0.0.2")))),
    ("IPv6 loopback and IPv4 loopback", config(router(ws(P, "127.0.0.1"), ws(P, "::1")))),
    ("both shared (SO_REUSEPORT)", config(router(ws(P, shared=True)), router(ws(P, shared=True)))),
    ("port 0 twice", config(router(ws(0), ws(0)))),
    ("a disabled worker", config(router(ws(P)), {**router(ws(P)), "options": {"disabled": True}})),
]


@pytest.mark.parametrize("name,cfg", OK, ids=[c[0] for c in OK])
def test_endpoints_that_can_coexist_pass(tmp_path, name, cfg):
    r = run_cli("check", "--cbdir", str(write(tmp_path, cfg)))
    assert r.returncode == 0, r.stderr


# -- what the node directory must hold -------------------------------------------------------------

def static_config(directory: str) -> dict:
    return config(router({"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": free_port()},
                          "paths": {"/": {"type": "static", "directory": directory}, "ws": {"type": "websocket"}}}))


def test_a_static_directory_that_does_not_exist_is_an_error(tmp_path):
    cbdir = write(tmp_path, static_config("../web"))
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1
    assert error_lines(r.stderr, cbdir) == [
        f"{cbdir / 'config.json'}: $.workers[0].transports[0].paths['/'].directory: directory '../web' does not "
        f"exist ({tmp_path / 'web'}; relative to the node directory)"]
    code, out = run_start(cbdir)
    assert code == 1 and error_lines(out, cbdir) == error_lines(r.stderr, cbdir)
    # relative to the node directory, not to the current directory
    (tmp_path / "web").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    r = run_cli("check", "--cbdir", str(cbdir), cwd=elsewhere)
    assert r.returncode == 0, r.stderr


def test_missing_tls_files_and_guest_executable_are_errors(tmp_path):
    cfg = config(router(ws(free_port(), tls={"key": "server.key", "certificate": "server.crt"})),
                 {"type": "guest", "executable": "no-such-program-here"},
                 {"type": "guest", "executable": "sh", "options": {"workdir": "missing"}})
    cbdir = write(tmp_path, cfg)
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1
    f = cbdir / "config.json"
    assert sorted(error_lines(r.stderr, cbdir)) == sorted([
        f"{f}: $.workers[0].transports[0].endpoint.tls.key: file 'server.key' not found ({cbdir / 'server.key'})",
        f"{f}: $.workers[0].transports[0].endpoint.tls.certificate: file 'server.crt' not found "
        f"({cbdir / 'server.crt'})",
        f"{f}: $.workers[1].executable: could not find an executable for 'no-such-program-here'",
        f"{f}: $.workers[2].options.workdir: directory 'missing' does not exist ({cbdir / 'missing'})",
    ])
    # files that are there but are no key and certificate: start could not load them either
    (cbdir / "server.key").write_text("not a key\n")
    (cbdir / "server.crt").write_text("not a certificate\n")
    r = run_cli("check", "--cbdir", str(cbdir))
    assert f"{f}: $.workers[0].transports[0].endpoint.tls: cannot use the TLS key and certificates: " in r.stderr


# -- no node directory is created but by init ---------------------------------------------------------

@pytest.mark.parametrize("command", ["keys", "status", "stop", "check", "start"])
def test_commands_on_a_missing_node_directory_fail_and_create_nothing(tmp_path, command):
    missing = tmp_path / ".crossbra"  # a typo
    r = run_cli(command, "--cbdir", str(missing), cwd=tmp_path)
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr == f"Error: node directory {missing} does not exist (create a node with: wampfabric init)\n"
    assert list(tmp_path.iterdir()) == []
    # a file where the directory should be
    missing.write_text("")
    r = run_cli(command, "--cbdir", str(missing), cwd=tmp_path)
    assert r.returncode == 1 and "is not a directory" in r.stderr


def test_a_too_long_unix_socket_path_and_a_cookie_store_in_a_missing_directory_are_errors(tmp_path):
    long_name = "s" * 120 + ".sock"
    cookie = {"store": {"type": "file", "filename": "state/cookies.dat"}}
    cfg = config(router({"type": "rawsocket", "endpoint": {"type": "unix", "path": long_name}},
                        {**ws(free_port()), "cookie": cookie},
                        {"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": free_port()},
                         "paths": {"ws": {"type": "websocket", "cookie": cookie}}}))
    cbdir = write(tmp_path, cfg)
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1
    f = cbdir / "config.json"
    full = cbdir / long_name
    assert error_lines(r.stderr, cbdir) == [
        f"{f}: $.workers[0].transports[0].endpoint.path: Unix socket path {full} is too long "
        f"({len(str(full))} bytes; at most 107)",
        f"{f}: $.workers[0].transports[1].cookie.store.filename: directory {cbdir / 'state'} does not exist",
        f"{f}: $.workers[0].transports[2].paths['ws'].cookie.store.filename: directory {cbdir / 'state'} does not exist",
    ]
    code, out = run_start(cbdir)
    assert code == 1 and error_lines(out, cbdir) == error_lines(r.stderr, cbdir)
    (cbdir / "state").mkdir()
    cfg["workers"][0]["transports"][0]["endpoint"]["path"] = "rs.sock"
    r = run_cli("check", "--cbdir", str(write(tmp_path, cfg)))
    assert r.returncode == 0, r.stderr


def test_a_static_service_from_a_python_package_is_refused(tmp_path):
    """The static service serves ``directory`` only; a Crossbar.io ``package``/``resource`` service
    used to serve the node directory itself (config.json, key.priv) instead."""
    cfg = static_config("../web")
    svc = cfg["workers"][0]["transports"][0]["paths"]["/"]
    del svc["directory"]
    svc.update(package="myapp", resource="web")
    cbdir = write(tmp_path, cfg)
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1
    assert error_lines(r.stderr, cbdir) == [
        f"{cbdir / 'config.json'}: $.workers[0].transports[0].paths['/'].package: static files from a Python package "
        f"are not supported by this version yet: use 'directory'"]
