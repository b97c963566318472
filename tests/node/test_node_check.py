"""``wampfabric check`` reports every error of a config (each independent item on its own), and
what start would refuse that the node directory tells: listening ports and Unix socket paths used
twice, static directories, Python packages and modules of web services, archive files, TLS files
and guest executables that are not there.  ``start`` reports
the same errors the same way, and no command but ``init`` creates a node directory.  Through the CLI."""

from __future__ import annotations

import os
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


def web_config(services: dict, **options) -> dict:
    """A router worker (``options`` as given) with one web transport holding ``services``."""
    worker = router({"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": free_port()},
                     "paths": {"ws": {"type": "websocket"}, **services}})
    if options:
        worker["options"] = options
    return config(worker)


def make_package(root: Path, name: str, marker: Path) -> Path:
    """A package ``name`` under ``root`` with a ``web`` directory and a module ``app``; importing
    the package writes ``marker`` (check must find it without running it)."""
    pkg = root / name
    (pkg / "web").mkdir(parents=True)
    (pkg / "web" / "index.html").write_text("<p>hello</p>\n")
    (pkg / "__init__.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (pkg / "app.py").write_text("def application(environ, start_response):\n    return []\n"
                                "def make(config):\n    return None\n")
    return pkg


def test_static_from_a_package_and_app_modules_are_found_on_the_worker_python_path(tmp_path):
    """``static`` with ``package``/``resource``, ``resource`` classes and ``wsgi``/``asgi`` modules are
    found where the router worker would import them (here ``options.pythonpath``, relative to the
    node directory) without check importing them; the same config without that path is refused
    with one line per service naming its JSON path."""
    marker = tmp_path / "imported"
    make_package(tmp_path / "lib", "w6webapp", marker)
    services = {
        "/": {"type": "static", "package": "w6webapp", "resource": "web"},
        "res": {"type": "resource", "classname": "w6webapp.app.make"},
        "wsgi": {"type": "wsgi", "module": "w6webapp.app", "object": "application"},
        "asgi": {"type": "asgi", "module": "w6webapp.app", "object": "application"},
    }
    cbdir = write(tmp_path, web_config(services, pythonpath=["../lib"]))
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 0, r.stderr
    assert not marker.exists()  # found, not imported

    cbdir = write(tmp_path, web_config(services))  # lib/ is not on the Python path now
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    f, t = cbdir / "config.json", "$.workers[0].transports[0].paths"
    where = ("(on the router worker's Python path: the node directory, options.pythonpath, PYTHONPATH, "
             "installed packages)")
    missing = f"ModuleNotFoundError: No module named 'w6webapp' {where}"
    assert sorted(error_lines(r.stderr, cbdir)) == sorted([
        f"{f}: {t}['/'].package: static service: cannot find resource 'web' of package 'w6webapp': {missing}",
        f"{f}: {t}['res'].classname: resource service: cannot import 'w6webapp.app.make': {missing}",
        f"{f}: {t}['wsgi'].module: wsgi service: cannot import module 'w6webapp.app': {missing}",
        f"{f}: {t}['asgi'].module: asgi service: cannot import module 'w6webapp.app': {missing}",
    ])
    code, out = run_start(cbdir)
    assert code == 1 and sorted(error_lines(out, cbdir)) == sorted(error_lines(r.stderr, cbdir))
    assert not marker.exists()


def test_a_missing_package_resource_or_submodule_is_refused(tmp_path):
    marker = tmp_path / "imported"
    make_package(tmp_path / "lib", "w6webapp", marker)
    (tmp_path / "lib" / "w6webapp" / "notadir").write_text("")
    cbdir = write(tmp_path, web_config({
        "/": {"type": "static", "package": "w6webapp", "resource": "www"},
        "file": {"type": "static", "package": "w6webapp", "resource": "notadir"},
        "nosub": {"type": "wsgi", "module": "w6webapp.missing", "object": "application"},
        "notpkg": {"type": "asgi", "module": "w6webapp.app.inner", "object": "application"},
        "installed": {"type": "static", "package": "wampfabric", "resource": "no-such-directory"},
    }, pythonpath=["../lib"]))
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    f, t, pkg = cbdir / "config.json", "$.workers[0].transports[0].paths", tmp_path / "lib" / "w6webapp"
    import wampfabric
    installed = Path(wampfabric.__file__).resolve().parent
    where = ("(on the router worker's Python path: the node directory, options.pythonpath, PYTHONPATH, "
             "installed packages)")
    assert sorted(error_lines(r.stderr, cbdir)) == sorted([
        f"{f}: {t}['/'].resource: static service: cannot find resource 'www' of package 'w6webapp': "
        f"'{pkg / 'www'}' does not exist",
        f"{f}: {t}['file'].resource: static service: cannot find resource 'notadir' of package 'w6webapp': "
        f"'{pkg / 'notadir'}' is not a directory",
        f"{f}: {t}['installed'].resource: static service: cannot find resource 'no-such-directory' of package "
        f"'wampfabric': '{installed / 'no-such-directory'}' does not exist",
        f"{f}: {t}['nosub'].module: wsgi service: cannot import module 'w6webapp.missing': ModuleNotFoundError: "
        f"No module named 'w6webapp.missing' {where}",
        f"{f}: {t}['notpkg'].module: asgi service: cannot import module 'w6webapp.app.inner': ModuleNotFoundError: "
        f"No module named 'w6webapp.app.inner'; 'w6webapp.app' is not a package {where}",
    ])
    assert not marker.exists()


def test_archive_files_must_be_there_readable_and_match_their_hashes(tmp_path):
    import hashlib
    import zipfile

    cbdir = tmp_path / ".crossbar"
    cbdir.mkdir()
    with zipfile.ZipFile(cbdir / "site.zip", "w") as z:
        z.writestr("index.html", "<p>hi</p>")
    (cbdir / "junk.zip").write_bytes(b"this is no archive\n")
    (cbdir / "adir.zip").mkdir()
    good = hashlib.sha256((cbdir / "site.zip").read_bytes()).hexdigest()
    services = {
        "a": {"type": "archive", "archive": "site.zip", "hashes": [good.upper()]},
        "b": {"type": "archive", "archive": "missing.zip", "origin": "https://example.com/site.zip"},
        "c": {"type": "archive", "archive": "junk.zip"},
        "d": {"type": "archive", "archive": "adir.zip"},
        "e": {"type": "archive", "archive": "site.zip", "hashes": ["0" * 64]},
    }
    write(tmp_path, web_config(services))
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    f, t = cbdir / "config.json", "$.workers[0].transports[0].paths"
    assert sorted(error_lines(r.stderr, cbdir)) == sorted([
        f"{f}: {t}['b'].archive: archive service: archive file '{cbdir / 'missing.zip'}' does not exist (wampfabric "
        f"never downloads it from 'origin'); 'missing.zip' is relative to the node directory",
        f"{f}: {t}['c'].archive: archive service: '{cbdir / 'junk.zip'}' is neither a ZIP nor a tar archive",
        f"{f}: {t}['d'].archive: archive service: archive file '{cbdir / 'adir.zip'}' is not a file; 'adir.zip' is "
        f"relative to the node directory",
        f"{f}: {t}['e'].hashes: archive service: '{cbdir / 'site.zip'}' has SHA-256 {good}, not one of 'hashes'",
    ])
    code, out = run_start(cbdir)
    assert code == 1 and sorted(error_lines(out, cbdir)) == sorted(error_lines(r.stderr, cbdir))
    write(tmp_path, web_config({"a": services["a"]}))
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 0, r.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_an_unreadable_archive_is_refused(tmp_path):
    cbdir = tmp_path / ".crossbar"
    cbdir.mkdir()
    (cbdir / "site.zip").write_bytes(b"PK")
    (cbdir / "site.zip").chmod(0)
    write(tmp_path, web_config({"a": {"type": "archive", "archive": "site.zip"}}))
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1
    assert error_lines(r.stderr, cbdir) == [
        f"{cbdir / 'config.json'}: $.workers[0].transports[0].paths['a'].archive: archive service: cannot read "
        f"'{cbdir / 'site.zip'}': Permission denied"]
