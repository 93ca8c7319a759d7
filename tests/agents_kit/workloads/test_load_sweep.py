"""The load harness of issue 22 at toy size: paced phases, closed-loop capacity, prefill and bytes written."""

import asyncio

import pytest

from agents_kit.server.app import ServerConfig, ServerProcess
from agents_kit.server.store import Store
from agents_kit.workloads.traffic import TrafficSpec, load_sweep, prefill, write_amplification


def test_prefill_writes_a_database_the_server_continues(tmp_path):
    prefill(tmp_path / "p.db", 500, n_chats=10, seed=1)
    store = Store(tmp_path / "p.db")
    assert store.stats()["messages"] == 500
    record = store.chat_record("fill00003")
    assert [m.seq for m in record] == list(range(1, len(record) + 1)) and record
    stored, _, _ = store.append(record[0].model_copy(update={"msg_id": "next", "seq": None}))
    assert stored.seq == len(record) + 1
    store.close()


@pytest.mark.server
def test_paced_phases_saturation_and_storage_counters(tmp_path):
    with ServerProcess(ServerConfig(db=str(tmp_path / "s.db"), port=0)) as server:
        spec = TrafficSpec(n_agents=10, group_size=5, seed=0, timeout_s=60)
        paced, saturation, audit = asyncio.run(asyncio.wait_for(load_sweep(server, spec, [200, 500], 0.8, 3), 60))
        storage = asyncio.run(asyncio.wait_for(write_amplification(server, spec, 500, 0.8), 60))
    assert [row["offered_deliveries_per_s"] for row in paced] == [200, 500]
    assert all(row["deliveries"] == 5 * row["messages"] > 0 and row["latency_p99_ms"] > 0 for row in paced)
    assert saturation["messages"] == 30 and saturation["deliveries"] == 150
    for result in (audit, storage):
        assert (result["lost"], result["duplicated"], result["out_of_order"], result["acked_not_stored"]) == (0,) * 4
    assert storage["write_bytes_per_message"] >= 0 and storage["wchar_per_message"] > storage["body_bytes"]
    assert storage["payload_x_recipients_bytes"] == pytest.approx(5 * storage["body_bytes"])
