"""Two gateways under one node id would share their leases and run sessions twice: the
second refuses to start while the first renews."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_a_second_gateway_under_a_live_nodes_id_refuses_to_start(
    gateway_factory, database, tmp_path
):
    env = {
        "GOWA_DATABASE_URL": database.url,
        "GOWA_NODE_ID": "twin",
        "GOWA_LEASE_TTL": "2",
        "GOWA_LEASE_RENEW_INTERVAL": "0.3",
        "GOWA_LEASE_MARGIN": "0.5",
    }
    first = gateway_factory(env=env, data_dir=tmp_path / "one" / "data")
    twin = gateway_factory(env=env, data_dir=tmp_path / "two" / "data", start=False)
    with pytest.raises(AssertionError, match="node id 'twin' is in use"):
        twin.start(timeout=30)
    # Once the first has left, the id is free again.
    first.stop()
    twin.start(timeout=30)
