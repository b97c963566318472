"""The rlink management API of a router worker and the link's connection: started and stopped
at run time, configured links, authentication (ticket, cryptosign with the node key), refusals."""

from __future__ import annotations

import asyncio
import json

import pytest

from rlinknodes import WORKER, link_config, link_info, make_nodes, wait_for

from wampfabric.client.session import ApplicationError


async def test_start_get_stop_at_run_time(started):
    a, b = started(make_nodes(2))
    m = await a.manage()
    events = asyncio.Queue()
    for name in ("started", "stopped", "connected"):
        await m.subscribe(f"{WORKER}.on_router_realm_link_{name}", lambda info, name=name: events.put_nowait((name, info)))
    assert await m.call(f"{WORKER}.get_router_realm_links", "realm001") == []
    info = await m.call(f"{WORKER}.start_router_realm_link", "realm001", "l1", link_config(b.port))
    assert info["id"] == "l1" and info["realm"] == "realm001" and info["config"]["realm"] == "realm1"
    assert "started_by" in info and info["connected"] is False
    assert await m.call(f"{WORKER}.get_router_realm_links", "realm001") == ["l1"]
    assert (await asyncio.wait_for(events.get(), 5))[0] == "started"
    assert await asyncio.wait_for(events.get(), 10) == ("connected", {"id": "l1", "realm": "realm001"})
    info = await link_info(m, "l1")
    assert info["connected"] and info["connects"] == 1 and info["last_error"] is None
    # B sees the link's session: ticket principal rlink, role rlink
    bm = await b.client()
    sessions = await bm.call("wamp.session.list")
    roles = [(await bm.call("wamp.session.get", s))["authrole"] for s in sessions]
    assert roles.count("rlink") == 1
    with pytest.raises(ApplicationError) as e:
        await m.call(f"{WORKER}.start_router_realm_link", "realm001", "l1", link_config(b.port))
    assert e.value.error == "crossbar.error.already_running"
    stopped = await m.call(f"{WORKER}.stop_router_realm_link", "realm001", "l1")
    assert stopped["id"] == "l1"
    assert (await asyncio.wait_for(events.get(), 5))[0] == "stopped"
    assert await m.call(f"{WORKER}.get_router_realm_links", "realm001") == []
    # the link's session on B is gone
    await wait_for(lambda: _roles(bm), 10, "link session gone from B")
    with pytest.raises(ApplicationError) as e:
        await m.call(f"{WORKER}.get_router_realm_link", "realm001", "l1")
    assert e.value.error == "crossbar.error.no_such_object"
    with pytest.raises(ApplicationError) as e:
        await m.call(f"{WORKER}.start_router_realm_link", "realm001", "l2", {"realm": "realm1"})
    assert e.value.error == "crossbar.error.invalid_configuration" and "transport" in e.value.args_[0]
    with pytest.raises(ApplicationError) as e:
        await m.call(f"{WORKER}.start_router_realm_link", "nope", "l2", link_config(b.port))
    assert e.value.error == "crossbar.error.no_such_object"
    await m.leave()
    await bm.leave()


async def _roles(session):
    sessions = await session.call("wamp.session.list")
    roles = [(await session.call("wamp.session.get", s))["authrole"] for s in sessions]
    return "rlink" not in roles


async def test_wrong_ticket_keeps_retrying_and_says_why(started):
    a, b = started(make_nodes(2))
    m = await a.manage()
    cfg = link_config(b.port, authentication={"ticket": {"authid": "rlink", "ticket": "wrong"}})
    await m.call(f"{WORKER}.start_router_realm_link", "realm001", "l1", cfg)

    async def failed():
        info = await link_info(m, "l1")
        return not info["connected"] and info["last_error"] and "authentication_failed" in info["last_error"]
    await wait_for(failed, 10, "the refusal in last_error")
    await m.leave()


async def test_cryptosign_with_the_node_key(started):
    a, b = make_nodes(2)
    started([a])  # A's node key is made at its first start
    pub = next(line.split(":", 1)[1].strip() for line in (a.cbdir / "key.pub").read_text().splitlines()
               if line.startswith("public-key-ed25519"))
    cfg = json.loads((b.cbdir / "config.json").read_text())
    cfg["workers"][0]["transports"][0]["auth"]["cryptosign"] = {
        "type": "static", "principals": {"node-a": {"authorized_keys": [pub], "role": "rlink"}}}
    (b.cbdir / "config.json").write_text(json.dumps(cfg))
    started([b])
    m = await a.manage()
    cfg = link_config(b.port, authentication={"cryptosign": {"authid": "node-a"}})
    await m.call(f"{WORKER}.start_router_realm_link", "realm001", "l1", cfg)
    await wait_for(lambda: _connected(m, "l1"), 10, "link up with the node key")
    await m.leave()


async def _connected(m, link_id):
    return (await link_info(m, link_id))["connected"]


async def test_configured_link_reconnects_when_the_other_router_starts_later(started):
    links = {0: [1]}
    a, b = make_nodes(2, links)
    started([a])
    m = await a.manage()
    await wait_for(lambda: _ids(m), 10, "the configured link")

    async def down():
        info = await link_info(m, "to1")
        return not info["connected"] and info["last_error"]
    await wait_for(down, 10, "a failed attempt")
    started([b])
    await wait_for(lambda: _connected(m, "to1"), 20, "the link once B is up")
    await m.leave()


async def _ids(m):
    return await m.call(f"{WORKER}.get_router_realm_links", "realm001") == ["to1"]
