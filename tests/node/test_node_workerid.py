"""Worker IDs are one component of the URIs ``crossbar.worker.<id>.*`` (the worker's procedures,
events and authrole), so an ID that makes those invalid loose URIs (whitespace, '#', '.', empty) is
refused by ``wampfabric check`` and ``start`` with the file, the JSON path and what is wrong, and by
``crossbar.start_worker`` with ``crossbar.error.invalid_argument``.
Before, such an ID passed the check and the worker then died at start ("register for invalid
procedure URI ...", "worker process exited with code 1 before it was ready").  Through the CLI and
the management API of a real node."""

from __future__ import annotations

import shutil

import pytest

from support.nodes import free_port
from support.nodecli import (
    config, error_lines, kill_node, mgmt, realm, router, run_cli, run_start, small_config, start_node, write, ws,
)
from wampfabric.client import ApplicationError

WHY = ("(whitespace, '.' and '#' cannot be in a URI component: the worker's procedures and events are "
       "crossbar.worker.<id>.*)")
BAD_IDS = {  # id -> what is wrong with it
    "my worker": f"must not contain ' ' {WHY}",
    "my#worker": f"must not contain '#' {WHY}",
    "tab\tworker": f"must not contain '\\t' {WHY}",
    "nbsp\u00a0worker": f"must not contain '\\xa0' {WHY}",
    "router.1": f"must not contain '.' {WHY}",
    "": "must not be empty (leave 'id' out for an automatic one)",
    "controller": "'controller' is reserved",
    "w" * 256: "longer than 255 characters",
}


@pytest.mark.parametrize("kind", ["router", "container", "guest"])
@pytest.mark.parametrize("wid", list(BAD_IDS), ids=lambda w: repr(w[:20]))
def test_check_refuses_worker_ids_that_are_no_uri_component(tmp_path, wid, kind):
    worker = {"router": router(ws(free_port())), "container": {"type": "container"},
              "guest": {"type": "guest", "executable": "python3"}}[kind]
    cbdir = write(tmp_path, config({"type": "container", "id": "fine"}, {"id": wid, **worker}))
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "Traceback" not in r.stderr
    assert error_lines(r.stderr, cbdir) == [
        f"{cbdir / 'config.json'}: $.workers[1].id: invalid worker id {wid[:100]!r}: {BAD_IDS[wid]}"], r.stderr


def test_check_accepts_worker_ids_that_are_loose_uri_components(tmp_path):
    """Crossbar.io's own rule for router IDs is ^[a-z][a-z0-9_]{2,63}$; ours is the loose URI rule,
    so IDs Crossbar.io accepts pass, and so do a few more that work here (capitals, '-')."""
    cbdir = write(tmp_path, config({"id": "router_1", **router(ws(free_port()))},
                                   {"id": "Container-A", "type": "container"},
                                   {"id": "w" * 255, "type": "container"}))
    r = run_cli("check", "--cbdir", str(cbdir))
    assert r.returncode == 0, r.stderr


def test_start_refuses_a_worker_id_with_whitespace_before_starting_anything(tmp_path):
    cbdir = write(tmp_path, config({"id": "my worker", **router(ws(free_port()), realms=[realm()])}))
    code, out = run_start(cbdir)
    assert code == 1, out
    assert "Traceback" not in out
    assert error_lines(out, cbdir) == [
        f"{cbdir / 'config.json'}: $.workers[0].id: invalid worker id 'my worker': {BAD_IDS['my worker']}"]
    assert "Starting router worker" not in out  # refused before any worker process


async def test_start_worker_api_refuses_such_ids_clearly():
    port = free_port()
    controller = {"options": {"shutdown": ["shutdown_on_shutdown_requested"]},
                  "transport": {"type": "rawsocket", "endpoint": {"type": "unix", "path": "node.sock"}}}
    node = start_node(small_config(port, controller=controller), wait_ports=[port])
    try:
        s = await mgmt(node)
        for wid in ("my worker", "my#worker", ""):
            with pytest.raises(ApplicationError) as e:
                await s.call("crossbar.start_worker", wid, "router", {})
            assert e.value.error == "crossbar.error.invalid_argument", e.value
            assert f"invalid worker ID {wid!r}: {BAD_IDS[wid]}" in str(e.value), e.value
        assert "my worker" not in await s.call("crossbar.get_workers")
        assert node.proc.poll() is None
        await s.call("crossbar.shutdown")
        node.proc.wait(15)
    finally:
        kill_node(node)
        shutil.rmtree(node.root, ignore_errors=True)
