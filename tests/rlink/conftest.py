"""The rlink tests' helpers live beside them (rlinknodes.py); ``started`` starts nodes and stops them
after the test."""

import sys
from pathlib import Path

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.append(_HERE)


@pytest.fixture
def started():
    running = []

    def start(nodes):
        for n in nodes:
            n.start()
            running.append(n)
        return nodes

    yield start
    for n in running:
        n.stop()
