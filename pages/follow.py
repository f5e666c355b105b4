"""Whether the chat view keeps a growing answer in view, decided from the scroll events the browser sends.

The page follows until the reader scrolls up and follows again once they are back at the bottom. Two
things make that harder than it sounds:

- a growing answer fires scroll events too (the position stays, the bottom moves away), so only a
  position that goes *up* is the reader's doing;
- the page's own "scroll to the bottom" messages travel to the browser while the reader's scroll travels
  to the server. One that was already on its way when the reader scrolled up moves them back to the
  bottom, which would look like "back at the bottom, follow again". A move to the bottom soon after
  such a message was sent, with no move down by the reader since they scrolled up, is taken for that:
  the reader is put back where they were and the page keeps not following.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

# how long a "scroll to the bottom" message may take to reach the browser and its effect to come back
IN_FLIGHT_SECONDS = 1.0
# the growing answer moves the reported position by rounding only; a reader's move up is larger
JITTER_PIXELS = 2.0


class Follower:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.following = True
        self._position = 0.0  # the last position the browser reported
        self._went_down = False  # whether the reader moved down since they scrolled up
        self._sent_at = -math.inf  # when the page last asked the browser to scroll to the bottom

    def resume(self) -> None:
        """Follow again whatever the reader did (they sent a message, which shows at the bottom)."""
        self.following = True

    def follow(self) -> bool:
        """Called once per render: whether to scroll to the bottom now (and remember that we did)."""
        if self.following:
            self._sent_at = self._clock()
        return self.following

    def scrolled(self, position: float, at_bottom: bool) -> float | None:
        """Take one scroll event; return a position to put the reader back to, if one of our own scrolls
        moved them after they had scrolled up."""
        if at_bottom:
            if (
                not self.following
                and position > self._position + JITTER_PIXELS
                and not self._went_down
                and self._clock() - self._sent_at < IN_FLIGHT_SECONDS
            ):
                return self._position  # keep the reader's position: the next event reports it again
            self.following = True
        elif position < self._position - JITTER_PIXELS:
            self.following = False
            self._went_down = False
        elif position > self._position + JITTER_PIXELS:
            self._went_down = True
        self._position = position
        return None
