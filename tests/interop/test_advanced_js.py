"""WAMP Advanced Profile features with autobahn-js (22.11.1 and 26.3.1) on Node.js.

The scenarios are in ``tests/js/advanced_scenarios.mjs`` (see its header);
this module runs them against the advanced node (``support/advanced.py``)
(role ``discloser`` on its own transport for role-based caller disclosure)
with the helpers of ``support/js.py``.  autobahn-js cannot do progressive
call invocations, call timeouts or cancel modes, and it announces no
``call_canceling`` as a callee; those are covered with autobahn-python and
raw peers in the other ``test_advanced_*`` modules.
"""

from __future__ import annotations

import asyncio

import pytest
from autobahn.wamp.types import CallResult, RegisterOptions

from support.advanced import identity_url
from support.autobahn_client import uid, w
from support.js import CLIENT_VERSION, require_node, run_js

require_node()

SCRIPT = "advanced_scenarios.mjs"
PARAMS = [pytest.param(lib, ser, id=f"{lib}-{ser}")
          for lib, sers in (("autobahn", ("json", "msgpack", "cbor")), ("autobahn26", ("json", "cbor")))
          for ser in sers]


def run_advanced(node, lib, serializer, scenario, prefix=None) -> dict:
    args = ["--url", node.ws_url, "--realm", node.realm, "--serializer", serializer, "--lib", lib,
            "--scenario", scenario]
    if prefix:
        args += ["--prefix", prefix]
    r = run_js(node, SCRIPT, *args, lib=lib)
    assert r["scenario"] == scenario and r["client"] == lib and r["client_version"] == CLIENT_VERSION[lib]
    assert r["protocol"] == f"wamp.2.{serializer}"
    node.assert_alive()
    return r


@pytest.mark.parametrize("lib,serializer", PARAMS)
async def test_js_progressive_call_results(anode, ac, js_deps, lib, serializer):
    callee = await ac("rawsocket-tcp", "msgpack")  # autobahn-python: announces call_canceling
    prefix = f"com.adv.jsprog.{uid()}"

    def stream(n, details):
        if details.progress:
            for i in range(n):
                details.progress(i)
        return CallResult("done")

    await w(callee.register(stream, f"{prefix}.stream", options=RegisterOptions(details_arg="details")))
    r = await asyncio.to_thread(run_advanced, anode, lib, serializer, "progressive", prefix)
    assert r["progress"] == [0, 1, 2] and r["result"] == "done"


@pytest.mark.parametrize("lib,serializer", PARAMS)
def test_js_pattern_subscription_details_topic(anode, js_deps, lib, serializer):
    r = run_advanced(anode, lib, serializer, "pattern_sub")
    ev = r["events"]
    assert [e["args"] for e in ev["prefix"]] == [[21.5], [40]]
    assert ev["prefix"][0]["topic"].endswith(".room1.temp") and ev["prefix"][1]["topic"].endswith(".room2.humidity")
    assert ev["wildcard"][0]["topic"].endswith(".room1.temp")
    # exact subscription: the router need not send a topic (autobahn-js fills in the subscribed URI)
    assert ev["exact"][0]["topic"] is None or ev["exact"][0]["topic"].endswith(".room1.temp")


@pytest.mark.parametrize("lib,serializer", PARAMS)
def test_js_session_meta_api(anode, js_deps, lib, serializer):
    r = run_advanced(anode, lib, serializer, "meta")
    assert r["count"] == r["list_len"] >= 2
    assert r["info"]["authrole"] == "anonymous" and r["info"]["authmethod"] == "anonymous"
    assert r["no_such"] == "wamp.error.no_such_session"


@pytest.mark.parametrize("lib,serializer", PARAMS)
def test_js_caller_and_publisher_disclosure(anode, js_deps, lib, serializer, monkeypatch):
    monkeypatch.setenv("WAMP_DISCLOSE_URL", identity_url(anode, "disclose"))
    r = run_advanced(anode, lib, serializer, "disclose")
    assert r["disclosed"][0] == r["publisher"][0] and r["disclosed"][2] == "anonymous"
    assert r["hidden"] == [None, None, None]
    assert r["by_role"][1:] == ["dave", "discloser"] and isinstance(r["by_role"][0], int)
