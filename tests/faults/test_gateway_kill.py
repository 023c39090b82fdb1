"""The gateway SIGKILLed while it is applying events and delivering webhooks."""

from __future__ import annotations

import signal

import pytest

from tests.procs import find_workers, wait_until

pytestmark = pytest.mark.integration


def test_gateway_sigkill_mid_stream_and_delivery(rig_factory):
    """Injected: SIGKILL of the gateway (its workers exit after it) halfway through a
    100-message stream, with a webhook receiver slow enough that deliveries are pending;
    a new gateway is started on the same data dir while the client keeps retrying.

    Expected: sends fail (connection refused) until the new gateway is up, then succeed;
    the new gateway brings the sessions back, replays the workers' durable event logs
    and the outboxes, and every accepted message is delivered. A webhook may be delivered
    twice (the old gateway died between the POST and recording it): that is the
    at-least-once contract, and the repeat carries the same envelope id.
    """
    rig = rig_factory()
    rig.receiver.delay = 0.05
    rig.add_pairs(2)
    with rig.stream(100, "gwkill"):
        rig.progress(50)
        wait_until(lambda: rig.receiver.items(), 20, what="deliveries under way")
        rig.gateway.stop(signal.SIGKILL)
        wait_until(lambda: not find_workers(rig.data_dir), 15, what="workers gone")
        rig.restart_gateway()
    figures = rig.assert_nothing_lost(redelivery_ok=True)
    assert figures["statuses"].get(None, 0) >= 1, figures  # some sends hit the dead gateway
    print("gateway kill", figures)
