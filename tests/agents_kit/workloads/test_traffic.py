"""A small load run with dropped connections against a real server process: the audit must be clean."""

import asyncio

import pytest

from agents_kit.server.app import ServerConfig, ServerProcess
from agents_kit.workloads.traffic import TrafficSpec, offline_member, run_traffic


@pytest.mark.server
def test_traffic_with_dropped_connections_loses_nothing(tmp_path):
    # the server-kill fault runs in the benchmark's quick profile (tests/agents_kit/test_bench.py)
    with ServerProcess(ServerConfig(db=str(tmp_path / "s.db"), port=0)) as server:
        spec = TrafficSpec(n_agents=8, messages_per_agent=6, send_interval_s=0.08, chaos_fraction=0.25,
                           chaos_interval_s=0.15, timeout_s=60)
        result = asyncio.run(asyncio.wait_for(run_traffic(server, spec), 80))
        offline = asyncio.run(asyncio.wait_for(offline_member(server, n_messages=10), 30))
    assert result["messages"] == 48 and result["deliveries"] == 8 * (1 + 4 * 6)
    assert (result["lost"], result["duplicated"], result["out_of_order"], result["acked_not_stored"]) == (0, 0, 0, 0)
    assert result["reconnects"] > 0
    assert (offline["lost"], offline["sender_disconnects"]) == (0, 0)
