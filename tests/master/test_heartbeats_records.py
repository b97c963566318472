"""The heartbeat records as the storage builds and stores them: fields of a wrong type become
null, Crossbar.io's flat controller heartbeat is gathered under ``process`` (D4), and the
prepared record construction keeps the record rules (unknown fields refused, defaults not
shared, values checked and converted when stored), read back through the real table codec."""

from __future__ import annotations

import uuid

import cbor2
import pytest

from wampfabric.db.errors import InvalidValue
from wampfabric.db.values import RecordValue
from wampfabric.master.heartbeats import node_record, worker_record
from wampfabric.master.schema import MNodeLog, MWorkerLog, NodeConfig, UserMrealmRole

NODE, MREALM = uuid.uuid4(), uuid.uuid4()


def roundtrip(record):
    codec = RecordValue(type(record))
    data = codec.encode(record)
    return cbor2.loads(data), codec.decode(data)


def test_node_record_takes_what_is_well_typed():
    hb = {"seq": 4, "timestamp": 11, "period": "10", "state": 1, "workers": {"router": 1},
          "system": {"cpu": {"user": 1.5}, "memory": [1], "network": {"b": 2}, "disk": None}}
    stored, back = roundtrip(node_record(hb, 99, NODE, MREALM, 1234))
    assert stored == {"timestamp": 99, "node_id": NODE, "mrealm_id": MREALM, "period": None, "state": 1,
                      "session": 1234, "sent": 11, "seq": 4, "workers": {"router": 1}, "cpu": {"user": 1.5},
                      "memory": None, "network": {"b": 2}, "disk": None}
    assert back == node_record(hb, 99, NODE, MREALM, 1234)
    assert roundtrip(node_record({"seq": 1, "system": "x"}, 5, NODE, MREALM, 1))[0]["cpu"] is None


def test_worker_record_nested_and_flat_process():
    ours = {"seq": 2, "type": "router", "process": {"pid": 7}, "router": {"sessions": 1}, "timestamp": 3,
            "period": 10, "state": 1, "mrealm_id": "m1"}
    stored, _ = roundtrip(worker_record(ours, 50, NODE, MREALM, "rw1"))
    assert stored == {"timestamp": 50, "node_id": NODE, "worker_id": "rw1", "mrealm_id": MREALM, "period": 10,
                      "type": "router", "state": 1, "sent": 3, "seq": 2, "process": {"pid": 7},
                      "router": {"sessions": 1}}
    flat = {"seq": 2, "type": "controller", "pid": 9, "cpu_user": 0.5, "timestamp": 3, "period": 10,
            "mrealm_id": "m1", "state": 1}
    stored, _ = roundtrip(worker_record(flat, 51, NODE, MREALM, "controller"))
    assert stored["process"] == {"pid": 9, "cpu_user": 0.5} and stored["router"] is None
    stored, _ = roundtrip(worker_record({"seq": 1, "type": 5, "process": [1]}, 52, NODE, MREALM, "w"))
    assert stored["type"] is None and stored["process"] is None


def test_record_rules_hold_with_the_prepared_construction():
    with pytest.raises(TypeError, match="has no field"):
        MWorkerLog(seq=1, bogus=2)
    a, b = UserMrealmRole(), UserMrealmRole()
    a.roles.append(1)
    assert b.roles == [] and NodeConfig().version == 0 and NodeConfig().exclusive is False
    # values of another exact type take the full check: converted or refused
    r = MNodeLog(node_id=str(NODE), workers={"a": 1}, seq=1)
    assert roundtrip(r)[0]["node_id"] == NODE
    with pytest.raises(InvalidValue, match="MNodeLog.seq must be int"):
        MNodeLog(seq=True).marshal()
    with pytest.raises(InvalidValue, match="MWorkerLog.process must be dict"):
        MWorkerLog(process=[1]).marshal()
    assert UserMrealmRole(roles=(1, 2)).marshal() == {"roles": [1, 2]}
