"""The web services of wampfabric.web end to end (static, archive, redirect, json, resource,
nodeinfo, path) on the node of httpfront.web_config, and their config checkers: Crossbar.io's
shapes accepted (by `wampfabric check`, and by Crossbar.io's own `crossbar check` where it is
installed), bad ones refused with the JSON path named."""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
import time
import zipfile
from email.utils import formatdate, parsedate_to_datetime
from pathlib import Path

import pytest

from httpfront import BIG_SIZE, Raw, get
from support.nodes import REPO
from wampfabric.config.base import ConfigError
from wampfabric.config.check import check_config
from wampfabric.personality import Personality


def test_static_validators_and_304(wnode):
    port = wnode.ports["web"]
    status, headers, body = get(port, "/a.txt")
    assert status == 200 and body == b"file a"
    etag, modified = headers["etag"], headers["last-modified"]
    assert headers["cache-control"] == "max-age=60, public" and "expires" in headers
    assert headers["accept-ranges"] == "bytes"
    status, headers, body = get(port, "/a.txt", {"If-None-Match": etag})
    assert status == 304 and body == b"" and headers["etag"] == etag and "content-length" not in headers
    assert get(port, "/a.txt", {"If-None-Match": f'"other", {etag}'})[0] == 304
    assert get(port, "/a.txt", {"If-None-Match": '"other"'})[0] == 200
    assert get(port, "/a.txt", {"If-Modified-Since": modified})[0] == 304
    assert get(port, "/a.txt", {"If-Modified-Since": formatdate(time.time() - 86400 * 400, usegmt=True)})[0] == 200
    # If-None-Match wins over If-Modified-Since (RFC 9110 13.2.2)
    assert get(port, "/a.txt", {"If-None-Match": '"other"', "If-Modified-Since": modified})[0] == 200
    # a changed file gets a new validator
    f = wnode.root / "site" / "b.txt"
    _, h1, _ = get(port, "/b.txt")
    f.write_text("file b changed")
    os.utime(f, (time.time() + 5, time.time() + 5))
    status, h2, body = get(port, "/b.txt", {"If-None-Match": h1["etag"]})
    assert status == 200 and body == b"file b changed" and h2["etag"] != h1["etag"]
    f.write_text("file b")


@pytest.mark.parametrize("rng,status,expected,content_range", [
    ("bytes=0-3", 206, b"0123", "bytes 0-3/10"),
    ("bytes=7-", 206, b"789", "bytes 7-9/10"),
    ("bytes=-2", 206, b"89", "bytes 8-9/10"),
    ("bytes=5-100", 206, b"56789", "bytes 5-9/10"),
    ("bytes=10-", 416, None, "bytes */10"),
    ("bytes=-0", 416, None, "bytes */10"),
    ("bytes=0-1,4-5", 200, b"0123456789", None),   # several ranges: the whole file
    ("bytes=5-2", 200, b"0123456789", None),       # invalid: ignored
    ("items=0-1", 200, b"0123456789", None),
])
def test_static_ranges(wnode, rng, status, expected, content_range):
    got, headers, body = get(wnode.ports["web"], "/digits.txt", {"Range": rng})
    assert got == status
    if expected is not None:
        assert body == expected and int(headers["content-length"]) == len(expected)
    assert headers.get("content-range") == content_range


def test_static_if_range(wnode):
    port = wnode.ports["web"]
    etag = get(port, "/digits.txt")[1]["etag"]
    assert get(port, "/digits.txt", {"Range": "bytes=0-1", "If-Range": etag})[2] == b"01"
    assert get(port, "/digits.txt", {"Range": "bytes=0-1", "If-Range": '"stale"'})[2] == b"0123456789"


def test_static_large_file_is_streamed_with_ranges(wnode):
    port = wnode.ports["web"]
    status, headers, body = get(port, "/big.bin", {"Range": f"bytes={BIG_SIZE - 5}-"})
    assert status == 206 and body == b"xxxxx"[:5] and headers["content-range"] == f"bytes {BIG_SIZE - 5}-{BIG_SIZE - 1}/{BIG_SIZE}"
    status, headers, body = get(port, "/big.bin", {"Range": "bytes=256-259"})
    assert body == b"\x00\x01\x02\x03"
    status, headers, body = get(port, "/big.bin", method="HEAD")
    assert status == 200 and int(headers["content-length"]) == BIG_SIZE and body == b""


def test_static_mime_types_listing_redirect_and_methods(wnode):
    port = wnode.ports["web"]
    assert get(port, "/x.wamp")[1]["content-type"] == "application/x-wamp"
    assert get(port, "/index.html")[1]["content-type"] == "text/html; charset=utf-8"
    status, headers, _ = get(port, "/sub?x=1")
    assert status == 301 and headers["location"] == "/sub/?x=1"
    status, _, body = get(port, "/sub/")
    assert status == 200 and b'href="/sub/c.txt"' in body
    assert b"to_outside" not in body  # a symlink out of the root is not listed
    assert get(port, "/sub/to_outside")[0] == 404
    status, headers, _ = get(port, "/a.txt", method="POST")
    assert status == 405 and headers["allow"] == "GET, HEAD"
    status, _, body = get(port, "/", {})
    assert body == b"<html><body>site index</body></html>"


def test_static_from_a_package_resource(wnode):
    status, headers, body = get(wnode.ports["web"], "/pkg/")
    assert status == 200 and body == b"<html>package index</html>"
    assert "cache-control" not in headers  # cache_timeout: null
    assert get(wnode.ports["web"], "/pkg/../webres.py")[0] == 404


def test_static_expires_is_worked_out_per_response(wnode):
    # Expires = the response's time + cache_timeout (60 s here), not the service's start + 60 s
    port = wnode.ports["web"]
    _, h1, _ = get(port, "/a.txt")
    time.sleep(1.2)
    _, h2, _ = get(port, "/a.txt")
    for h in (h1, h2):
        expires, date = parsedate_to_datetime(h["expires"]), parsedate_to_datetime(h["date"])
        assert (expires - date).total_seconds() == 60
    assert parsedate_to_datetime(h2["expires"]) > parsedate_to_datetime(h1["expires"])


def _replace(site: Path, name: str, make) -> None:
    """Swap the file ``name`` for what ``make(tmp)`` creates, in one rename."""
    tmp = site / (name + ".new")
    make(tmp)
    os.replace(tmp, site / name)


def test_static_serves_what_is_on_disk_now(wnode):
    # a file served once is answered from memory afterwards: every change on disk must show
    site = wnode.root / "site"
    port = wnode.ports["web"]
    f = site / "cached.txt"
    f.write_text("version 1")
    try:
        assert get(port, "/cached.txt")[2] == b"version 1"
        assert get(port, "/cached.txt")[2] == b"version 1"
        # the same size and mtime, another file (a new inode): the new content
        st = f.stat()
        _replace(site, "cached.txt", lambda t: (t.write_text("version 2"), os.utime(t, ns=(st.st_atime_ns,
                                                                                          st.st_mtime_ns))))
        assert f.stat().st_mtime_ns == st.st_mtime_ns and f.stat().st_size == st.st_size
        assert get(port, "/cached.txt")[2] == b"version 2"
        # HEAD from memory: the length, no body
        status, headers, body = get(port, "/cached.txt", method="HEAD")
        assert status == 200 and headers["content-length"] == "9" and body == b""
        # replaced by a symlink out of the root: refused
        _replace(site, "cached.txt", lambda t: t.symlink_to(wnode.root / "outside.txt"))
        status, _, body = get(port, "/cached.txt")
        assert status == 404 and b"secret" not in body
        # by a symlink inside the root: followed
        _replace(site, "cached.txt", lambda t: t.symlink_to(site / "a.txt"))
        assert get(port, "/cached.txt")[2] == b"file a"
        # deleted, then back
        f.unlink()
        assert get(port, "/cached.txt")[0] == 404
        f.write_text("version 3")
        assert get(port, "/cached.txt")[2] == b"version 3"
        # a directory now: the redirect to its slash
        f.unlink()
        f.mkdir()
        assert get(port, "/cached.txt")[0] == 301
        f.rmdir()
    finally:
        if f.is_dir():
            f.rmdir()
        f.unlink(missing_ok=True)


def test_static_directory_index_follows_the_disk(wnode):
    site = wnode.root / "site"
    port = wnode.ports["web"]
    d = site / "idx"
    d.mkdir()
    try:
        (d / "index.html").write_text("index one")
        assert get(port, "/idx/")[2] == b"index one"
        (d / "index.html").unlink()
        status, _, body = get(port, "/idx/")
        assert status == 200 and b"Index of /idx/" in body  # the listing now
        (d / "index.html").write_text("index two")
        assert get(port, "/idx/")[2] == b"index two"
    finally:
        (d / "index.html").unlink(missing_ok=True)
        d.rmdir()


def test_static_large_file_changed_on_disk(wnode):
    # a large file is not kept in memory, its path and identity are: a new file must be served
    site = wnode.root / "site"
    port = wnode.ports["web"]
    f = site / "large.bin"
    f.write_bytes(b"a" * (2 * 1024 * 1024))
    try:
        status, headers, body = get(port, "/large.bin")
        assert status == 200 and body == b"a" * (2 * 1024 * 1024)
        _replace(site, "large.bin", lambda t: t.write_bytes(b"b" * (2 * 1024 * 1024 + 1)))
        status, headers, body = get(port, "/large.bin", {"Range": "bytes=-3"})
        assert status == 206 and body == b"bbb" and headers["content-range"].endswith(f"/{2 * 1024 * 1024 + 1}")
        _replace(site, "large.bin", lambda t: t.symlink_to(wnode.root / "outside.txt"))
        assert get(port, "/large.bin")[0] == 404
    finally:
        f.unlink(missing_ok=True)


def test_static_memory_is_bounded(tmp_path, monkeypatch):
    # in-process: the service's remembered files stay within their byte and entry bounds
    from wampfabric.web import static

    monkeypatch.setattr(static, "CACHE_TOTAL_MAX", 10_000)
    monkeypatch.setattr(static, "CACHE_ENTRIES_MAX", 8)
    for i in range(20):
        (tmp_path / f"f{i}.txt").write_bytes(b"%d" % i * 3000)

    class Request:
        method, query, raw_path, head = "GET", "", b"", False
        headers: dict = {}

        def respond_prepared(self, status, lines, body=b""):
            self.answer = (status, body)

        def respond(self, status, body=b"", headers=None, content_type=None):
            self.answer = (status, body)

    class Transport:
        cbdir = tmp_path

    svc = static.StaticWebService(Transport(), {"type": "static", "directory": "."})
    for rounds in range(2):
        for i in range(20):
            req = Request()
            req.path = f"/f{i}.txt"
            svc.handle(req, f"f{i}.txt")
            assert req.answer == (200, b"%d" % i * 3000)
            assert len(svc._entries) <= 8
            assert sum(len(e.data) for e in svc._entries.values() if e.data) <= 10_000
    assert svc._entries  # the last ones are remembered


def test_archive_zip(wnode):
    port = wnode.ports["web"]
    status, headers, body = get(port, "/arc/")
    assert status == 200 and body == b"<html>zip index</html>" and headers["content-type"].startswith("text/html")
    assert get(port, "/arc/app.js")[1]["content-type"].startswith("text/javascript")
    assert get(port, "/arc/docs/readme.txt")[2] == b"zip readme"
    assert get(port, "/arc/docs/")[0] == 404  # no default object there
    assert get(port, "/arc/secret.txt")[0] == 404  # outside object_prefix
    assert get(port, "/arc/evil.txt")[0] == 404
    etag = get(port, "/arc/app.js")[1]["etag"]
    assert get(port, "/arc/app.js", {"If-None-Match": etag})[0] == 304
    assert get(port, "/arc/app.js", {"Range": "bytes=0-6"})[2] == b"console"


def test_archive_tar(wnode):
    port = wnode.ports["web"]
    assert get(port, "/tar/")[2] == b"<html>tar index</html>"
    assert get(port, "/tar/css/site.css")[2] == b"body{}"
    assert get(port, "/tar/passwd")[0] == 404  # a symlink member is never served


def test_redirect_json_nodeinfo_path(wnode):
    port = wnode.ports["web"]
    status, headers, _ = get(port, "/redir")
    assert status == 302 and headers["location"] == "http://example.com/target"
    assert get(port, "/redir/below")[0] == 404
    status, headers, body = get(port, "/json")
    assert json.loads(body) == {"a": 1, "b": [1, 2], "s": "ü"}
    assert headers["content-type"] == "application/json; charset=utf-8"
    assert headers["access-control-allow-origin"] == "*"
    assert get(port, "/json", method="POST")[0] == 405
    status, _, body = get(port, "/info")
    assert status == 200 and b"realm1" in body
    assert json.loads(get(port, "/nest")[2]) == "nested root"
    assert json.loads(get(port, "/nest/")[2]) == "nested root"
    assert json.loads(get(port, "/nest/deep/er")[2]) == "nested deeper"
    assert get(port, "/nest/deep")[0] == 404


def test_resource_service(wnode):
    c = Raw(wnode.ports["web"])
    try:
        status, headers, body = c.request("PUT", "/echo/some/thing?a=1", body=b"payload")
        assert status == 200 and body == b"echo:PUT some/thing payload" and headers["x-query"] == "a=1"
    finally:
        c.close()


def test_universal_transport_serves_web_paths(wnode):
    port = wnode.ports["uni"]
    assert json.loads(get(port, "/json")[2]) == [1, 2, 3]
    assert get(port, "/a.txt")[2] == b"file a"
    c = Raw(port)
    try:
        for _ in range(3):
            assert c.request("GET", "/b.txt")[2] == b"file b"
    finally:
        c.close()


# -- config ---------------------------------------------------------------------------------------

def _config(paths: dict, options: dict | None = None) -> dict:
    transport = {"type": "web", "endpoint": {"type": "tcp", "port": 8080}, "paths": paths}
    if options is not None:
        transport["options"] = options
    return {"version": 2, "workers": [{"type": "router", "realms": [], "transports": [transport]}]}


CROSSBAR_SHAPED = {
    "/": {"type": "static", "directory": "..", "options": {"enable_directory_listing": True,
                                                           "mime_types": {".svg": "image/svg+xml"},
                                                           "cache_timeout": 100, "default_file": "index.html"}},
    "ws": {"type": "websocket"},
    "pkg": {"type": "static", "package": "autobahn", "resource": "wamp"},
    "arc": {"type": "archive", "archive": "site.zip", "origin": "https://example.com/site.zip", "download": True,
            "cache": True, "default_object": "index.html", "object_prefix": "pub",
            "mime_types": {".md": "text/markdown"}, "hashes": ["a" * 64]},
    "to": {"type": "redirect", "url": "https://example.com/"},
    "cfg": {"type": "json", "value": {"x": [1, 2]}, "options": {"prettify": True, "allow_cross_origin": False,
                                                                  "discourage_caching": True}},
    "res": {"type": "resource", "classname": "mymodule.MyResource", "extra": {"k": 1}},
    "info": {"type": "nodeinfo"},
    "nested": {"type": "path", "paths": {"/": {"type": "json", "value": 1},
                                         "deeper": {"type": "redirect", "url": "/x"}}},
}
CROSSBAR_OPTIONS = {"access_log": True, "display_tracebacks": False, "hsts": True, "hsts_max_age": 1000,
                    "client_timeout": 60}


def test_checker_accepts_crossbar_shaped_configs():
    cfg = _config(copy.deepcopy(CROSSBAR_SHAPED), dict(CROSSBAR_OPTIONS))
    check_config(cfg, Personality())
    front = {"header_timeout": 5, "body_timeout": 30.5, "keepalive_timeout": 10, "write_timeout": 20,
             "max_header_size": 8192, "max_header_count": 50, "max_request_line": 4096, "max_pipelined": 8,
             "write_buffer_high": 65536}
    check_config(_config({"/": {"type": "nodeinfo"}}, front), Personality())


@pytest.mark.parametrize("paths,options,where,what", [
    ({"/": {"type": "static", "directory": "x", "package": "p", "resource": "r"}}, None, "paths['/']", "not both"),
    ({"/": {"type": "static", "package": "p"}}, None, "paths['/']", "'package' and 'resource'"),
    ({"/": {"type": "static", "directory": "x", "options": {"cache_timeout": -1}}}, None,
     "paths['/'].options.cache_timeout", "non-negative"),
    ({"/": {"type": "static", "directory": "x", "options": {"mime_types": {".x": "nomime"}}}}, None,
     "paths['/'].options.mime_types['.x']", "MIME type"),
    ({"a": {"type": "redirect"}}, None, "paths['a']", "'url'"),
    ({"a": {"type": "redirect", "url": "x", "status": 200}}, None, "paths['a'].status", "301"),
    ({"a": {"type": "json"}}, None, "paths['a']", "'value'"),
    ({"a": {"type": "json", "value": 1, "options": {"pretty": True}}}, None, "paths['a'].options.pretty", "unknown"),
    ({"a": {"type": "resource", "classname": "no dots"}}, None, "paths['a'].classname", "dotted"),
    ({"a": {"type": "archive"}}, None, "paths['a']", "'archive'"),
    ({"a": {"type": "archive", "archive": "x.zip", "hashes": ["abc"]}}, None, "paths['a'].hashes[0]", "SHA-256"),
    ({"a": {"type": "path", "paths": {"b": {"type": "nope"}}}}, None, "paths['a'].paths['b'].type", "unknown web"),
    ({"a": {"type": "path", "paths": {"../b": {"type": "nodeinfo"}}}}, None, "paths['a'].paths['../b']", "invalid"),
    ({"a": {"type": "nodeinfo", "extra": 1}}, None, "paths['a'].extra", "unknown attribute"),
    ({"a": {"type": "nodeinfo"}}, {"header_timeout": 0}, "options.header_timeout", "positive"),
    ({"a": {"type": "nodeinfo"}}, {"max_header_size": "big"}, "options.max_header_size", ""),
    ({"a": {"type": "nodeinfo"}}, {"hsts_max_age": -1}, "options.hsts_max_age", "non-negative"),
    ({"a": {"type": "nodeinfo"}}, {"colour": "red"}, "options.colour", "unknown attribute"),
])
def test_checker_refuses_bad_services(paths, options, where, what):
    with pytest.raises(ConfigError) as e:
        check_config(_config(paths, options), Personality())
    text = str(e.value)
    assert f"$.workers[0].transports[0].{where}" in text and what in text, text


def _run_check(cmd: list, cbdir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(cmd + ["check", "--cbdir", str(cbdir)], capture_output=True, text=True, timeout=120)


def test_wampfabric_check_and_crossbar_check_accept_the_same_config(tmp_path):
    cbdir = tmp_path / ".crossbar"
    cbdir.mkdir()
    cfg = _config(copy.deepcopy(CROSSBAR_SHAPED), dict(CROSSBAR_OPTIONS))
    cfg["workers"][0]["realms"] = [{"name": "realm1", "roles": []}]
    # what wampfabric check looks for as start would: the resource's module on the worker's Python
    # path (the node directory), the archive file with one of its 'hashes'
    (cbdir / "mymodule.py").write_text("class MyResource:\n    def handle(self, request, subpath):\n"
                                       "        request.respond(200, b'x')\n")
    with zipfile.ZipFile(cbdir / "site.zip", "w") as z:
        z.writestr("pub/index.html", "<html>zip index</html>")
    cfg["workers"][0]["transports"][0]["paths"]["arc"]["hashes"] = [
        hashlib.sha256((cbdir / "site.zip").read_bytes()).hexdigest()]
    (cbdir / "config.json").write_text(json.dumps(cfg))
    r = _run_check([sys.executable, "-m", "wampfabric"], cbdir)
    assert r.returncode == 0, r.stdout + r.stderr
    crossbar = REPO / "bench" / ".venv-crossbar" / "bin" / "crossbar"
    if not crossbar.exists():
        pytest.skip("Crossbar.io is not installed (bench/setup_crossbar.sh)")
    r = _run_check([str(crossbar)], cbdir)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("service,message", [
    ({"type": "archive", "archive": "missing.zip", "origin": "http://127.0.0.1:9/x.zip", "download": True},
     "does not exist (wampfabric never downloads it from 'origin')"),
    ({"type": "static", "package": "no_such_package_here", "resource": "web"},
     "cannot find resource 'web' of package 'no_such_package_here'"),
    ({"type": "resource", "classname": "no_such_module.Thing"}, "cannot import 'no_such_module.Thing'"),
])
def test_a_service_that_cannot_start_fails_the_start_with_a_clear_message(tmp_path, service, message):
    from support.nodecli import run_start
    from support.nodes import free_port

    cbdir = tmp_path / ".crossbar"
    cbdir.mkdir()
    cfg = _config({"/": service})
    cfg["workers"][0]["transports"][0]["endpoint"] = {"type": "tcp", "interface": "127.0.0.1", "port": free_port()}
    (cbdir / "config.json").write_text(json.dumps(cfg))
    code, out = run_start(cbdir)
    assert code == 1 and message in out, out
    assert "Traceback" not in out
