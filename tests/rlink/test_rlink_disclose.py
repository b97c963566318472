"""Publisher and caller disclosure across router links, and ``forward_for`` from sessions that are
not links.  The users' role does not disclose (the links' role does): the original publisher or
caller reaches the other router (``forward_for[0]``) only when its own router's rules disclose it
(``disclose_me`` here); otherwise ``forward_for`` names the forwarding leg.  Both directions, so
both leg kinds (in-process, network) are exercised.  A ``forward_for`` option from an ordinary
client is ignored: its events are forwarded as anybody's and nobody sees the claimed identity."""

from __future__ import annotations

import asyncio

from rlinknodes import link_info, links_connected, make_nodes, wait_for

from wampfabric.client.auth import Ticket
from wampfabric.client.connection import connect


async def user(node, authid):
    return await connect(node.url, "realm1", auth=[Ticket("secret", authid=authid)])

TOPIC = "com.example.disclose"


async def _wait_link(node, key, uri, sides=("here", "there")):
    m = await node.manage()
    try:
        async def ok():
            info = await link_info(m, "to1")
            return all(uri in info[side][key] for side in sides)
        await wait_for(ok, 20, f"{uri} mirrored on {sides}")
    finally:
        await m.leave()


async def test_publisher_disclosed_across_only_when_rules_disclose(started):
    links = {0: [1]}
    nodes = started(make_nodes(2, links, user_disclose=False))
    await links_connected(nodes, links)
    subs = [await connect(n.url, "realm1") for n in nodes]
    got = [[], []]
    for i, s in enumerate(subs):
        await s.subscribe(TOPIC, lambda *a, details, i=i: got[i].append((a, details)), details=True)
    await _wait_link(nodes[0], "subscriptions", TOPIC)
    for k in (0, 1):  # published on A (in-process leg forwards), then on B (network leg forwards)
        other = 1 - k
        pub = await user(nodes[k], "alice")
        got[0].clear(), got[1].clear()
        await pub.publish(TOPIC, "hidden", options={"acknowledge": True})
        await pub.publish(TOPIC, "shown", options={"acknowledge": True, "disclose_me": True})
        await wait_for(lambda: len(got[other]) == 2 and len(got[k]) == 2, 10, "both events on both routers")
        (ha, hidden), (sa, shown) = got[other]
        assert ha == ("hidden",) and sa == ("shown",)
        me = {"session": pub.session_id, "authid": "alice", "authrole": "user"}
        assert shown["forward_for"] == [me]
        ff = hidden["forward_for"]
        assert len(ff) == 1 and ff[0]["session"] != pub.session_id and ff[0]["authid"] != "alice", ff
        assert hidden.get("publisher") != pub.session_id and hidden.get("publisher_authid") != "alice"
        # on the publisher's own router: as the rules say, no forward_for
        (_, local_hidden), (_, local_shown) = got[k]
        assert "publisher" not in local_hidden and local_shown["publisher"] == pub.session_id
        assert "forward_for" not in local_hidden and "forward_for" not in local_shown
        await pub.leave()


async def test_caller_disclosed_across_only_when_rules_disclose(started):
    links = {0: [1]}
    nodes = started(make_nodes(2, links, user_disclose=False))
    await links_connected(nodes, links)
    for k in (0, 1):  # callee on B, caller on A (A's in-process leg calls B); then the other way
        callee_node, caller_node = nodes[1 - k], nodes[k]
        seen = []
        callee = await connect(callee_node.url, "realm1")
        uri = f"com.example.who{k}"
        await callee.register(uri, lambda details: seen.append(details) or "ok", details=True)
        await _wait_link(nodes[0], "registrations", uri, ("here",) if k == 0 else ("there",))
        caller = await user(caller_node, "bob")
        assert await caller.call(uri) == "ok"
        assert await caller.call(uri, options={"disclose_me": True}) == "ok"
        hidden, shown = seen
        assert shown["forward_for"] == [{"session": caller.session_id, "authid": "bob", "authrole": "user"}]
        ff = hidden["forward_for"]
        assert len(ff) == 1 and ff[0]["session"] != caller.session_id and ff[0]["authid"] != "bob", ff
        assert hidden.get("caller") != caller.session_id and hidden.get("caller_authid") != "bob"
        await caller.leave()
        await callee.leave()


async def test_forward_for_from_an_ordinary_session_is_ignored(started):
    links = {0: [1]}
    nodes = started(make_nodes(2, links))
    await links_connected(nodes, links)
    fake = [{"session": 1, "authid": "mallory", "authrole": "admin"}]
    got = [[], []]
    subs = [await connect(n.url, "realm1") for n in nodes]
    for i, s in enumerate(subs):
        await s.subscribe(TOPIC, lambda *a, details, i=i: got[i].append(details), details=True)
    seen = []
    await subs[0].register("com.example.spoof", lambda details: seen.append(details) or "ok", details=True)
    await _wait_link(nodes[0], "subscriptions", TOPIC)
    await _wait_link(nodes[0], "registrations", "com.example.spoof", ("there",))
    liar_a = await connect(nodes[0].url, "realm1")
    await liar_a.publish(TOPIC, 1, options={"acknowledge": True, "forward_for": fake})
    # forwarded like anybody's event (a forward_for would have kept it on A), the claim dropped
    await wait_for(lambda: got[0] and got[1], 10, "the event on both routers")
    assert "forward_for" not in got[0][0]
    assert got[1][0]["forward_for"][0]["session"] == liar_a.session_id
    await asyncio.sleep(0.3)
    assert len(got[0]) == 1 and len(got[1]) == 1
    # calls: on A directly, and from B over the link
    assert await liar_a.call("com.example.spoof", options={"forward_for": fake}) == "ok"
    assert "forward_for" not in seen[-1] and seen[-1]["caller"] == liar_a.session_id
    liar_b = await connect(nodes[1].url, "realm1")
    assert await liar_b.call("com.example.spoof", options={"forward_for": fake}) == "ok"
    assert seen[-1]["forward_for"] == [{"session": liar_b.session_id, "authid": liar_b.details["authid"],
                                        "authrole": "user"}]
    # a session whose role allows everything may subscribe to the links' marker topic, but that does
    # not make it a link: its role does not name the marker exactly, so its forward_for is still dropped
    got[0].clear(), got[1].clear()
    poser = await connect(nodes[0].url, "realm1")
    await poser.subscribe("wampfabric.rlink.leg", lambda *a: None)
    await poser.publish(TOPIC, 2, options={"acknowledge": True, "forward_for": fake})
    await wait_for(lambda: got[0] and got[1], 10, "the poser's event on both routers")
    assert "forward_for" not in got[0][0]
    assert got[1][0]["forward_for"][0]["session"] == poser.session_id
    assert await poser.call("com.example.spoof", options={"forward_for": fake}) == "ok"
    assert "forward_for" not in seen[-1] and seen[-1]["caller"] == poser.session_id
