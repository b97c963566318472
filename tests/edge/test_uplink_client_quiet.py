"""The network client's ``log_retries=False`` (the uplink's): no line of the client per failed
attempt, the ``on_failure`` hook is told each one (it logs what the user needs to know)."""

from __future__ import annotations

import asyncio
import logging

from support.nodes import free_port
from wampfabric.client import Backoff, Client


async def _failures(caplog, **kw) -> tuple[list, list]:
    seen = []
    port = free_port()  # nothing listens there
    client = Client(f"ws://127.0.0.1:{port}/ws", "realm1", backoff=Backoff(initial=0.05, maximum=0.05, jitter=0),
                    on_failure=lambda e, attempt, delay: seen.append((attempt, delay)), timeout=2, **kw).start()
    with caplog.at_level(logging.INFO, logger="wampfabric.client"):
        for _ in range(200):
            if len(seen) >= 3:
                break
            await asyncio.sleep(0.02)
        await client.close()
    lines = [r.getMessage() for r in caplog.records if r.name == "wampfabric.client"]
    return seen, lines


async def test_quiet_client_logs_no_retry_lines(caplog):
    seen, lines = await _failures(caplog, log_retries=False)
    assert [a for a, _ in seen[:3]] == [1, 2, 3]
    assert not [line for line in lines if "retrying" in line], lines


async def test_client_logs_retry_lines_by_default(caplog):
    seen, lines = await _failures(caplog)
    assert len(seen) >= 3
    assert len([line for line in lines if "retrying in" in line]) >= 3, lines
