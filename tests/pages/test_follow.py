"""When the chat view follows a growing answer, from the scroll events a browser sends."""

from __future__ import annotations

from pages.follow import IN_FLIGHT_SECONDS, Follower


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def streaming(clock: Clock) -> Follower:
    """A follower that has been following an answer down to position 1,000."""
    follower = Follower(clock)
    for position in (0.0, 500.0, 1000.0):
        assert follower.follow()
        assert follower.scrolled(position, at_bottom=True) is None
        clock.now += 0.1
    return follower


def test_a_growing_answer_alone_never_stops_following() -> None:
    clock = Clock()
    follower = streaming(clock)
    assert follower.scrolled(1000.0, at_bottom=False) is None  # the answer grew, the position stayed
    assert follower.scrolled(1000.5, at_bottom=False) is None  # rounding
    assert follower.follow()


def test_scrolling_up_stops_following_and_coming_back_down_resumes() -> None:
    clock = Clock()
    follower = streaming(clock)
    follower.scrolled(900.0, at_bottom=False)
    follower.scrolled(600.0, at_bottom=False)
    assert not follower.follow()
    clock.now += 0.05
    follower.scrolled(800.0, at_bottom=False)  # the reader scrolls down...
    assert follower.scrolled(1400.0, at_bottom=True) is None  # ...to the bottom, right away
    assert follower.follow()


def test_our_own_scroll_arriving_after_the_reader_left_puts_them_back() -> None:
    clock = Clock()
    follower = streaming(clock)
    follower.follow()  # a render asks for the bottom; the message is on its way...
    clock.now += 0.01
    assert follower.scrolled(300.0, at_bottom=False) is None  # ...while the reader scrolls up
    assert not follower.follow()
    clock.now += 0.02
    assert follower.scrolled(1500.0, at_bottom=True) == 300.0  # the message lands: back to 300
    assert not follower.follow()
    assert follower.scrolled(300.0, at_bottom=False) is None  # the browser reports the restored place
    assert not follower.follow()


def test_a_reader_back_at_the_bottom_long_after_our_last_scroll_is_followed_again() -> None:
    clock = Clock()
    follower = streaming(clock)
    follower.scrolled(300.0, at_bottom=False)
    clock.now += IN_FLIGHT_SECONDS + 0.1
    assert follower.scrolled(2000.0, at_bottom=True) is None  # e.g. the End key: one jump
    assert follower.follow()


def test_sending_a_message_follows_whatever_the_reader_did() -> None:
    clock = Clock()
    follower = streaming(clock)
    follower.scrolled(300.0, at_bottom=False)
    follower.resume()
    assert follower.follow()


def test_an_answer_that_fits_on_screen_is_followed() -> None:
    clock = Clock()
    follower = Follower(clock)
    assert follower.scrolled(0.0, at_bottom=True) is None
    assert follower.follow()
