"""Who is listening, and who confirmed a change (services/peers.py), on a hand-moved clock."""

from __future__ import annotations

import threading

from services.peers import Peers


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_an_instance_is_live_until_three_heartbeats_are_missed() -> None:
    clock = Clock()
    peers = Peers(live_seconds=3.0, clock=clock)
    peers.heard("a")
    clock.now += 1
    peers.heard("b")
    clock.now += 1.9
    assert peers.live() == {"a", "b"}
    clock.now += 0.1  # a last heard 3 s ago
    assert peers.live() == {"b"}
    peers.heard("a")  # heard again: live again
    peers.forget(["b"])
    assert peers.live() == {"a"}


def test_a_change_waits_only_for_the_instances_expected_and_reports_the_silent_ones() -> None:
    peers = Peers()
    peers.expect(1, {"a", "b"})
    peers.confirmed(1, "a")
    peers.confirmed(2, "b")  # another change's confirmation does not count for this one
    assert peers.wait(1, timeout=0.05) == {"b"}
    assert peers.wait(1, timeout=0.0) == set(), "a finished wait leaves nothing behind"
    peers.expect(3, set())
    assert peers.wait(3, timeout=10.0) == set(), "nobody to wait for: no wait"


def test_a_confirmation_from_another_thread_ends_the_wait() -> None:
    peers = Peers()
    peers.expect(7, {"a", "b"})
    confirmations = threading.Thread(target=lambda: [peers.confirmed(7, i) for i in ("b", "a")])
    confirmations.start()
    assert peers.wait(7, timeout=30.0) == set()
    confirmations.join()
    assert peers.live() == {"a", "b"}, "a confirmation also says the instance is listening"


def test_an_instance_that_says_goodbye_is_waited_for_no_longer() -> None:
    peers = Peers()
    peers.heard("a")
    peers.heard("b")
    peers.expect(1, {"a", "b"})
    peers.confirmed(1, "a")
    stopping = threading.Thread(target=peers.gone, args=("b",))
    stopping.start()
    assert peers.wait(1, timeout=30.0) == set(), "a change in flight stops waiting for it"
    stopping.join()
    assert peers.live() == {"a"}
