"""Open-loop pacing: hold a target arrival rate per user and count late and dropped sends.

Locust users are closed loops: a slow response delays the next request, so the offered load
falls exactly when the server struggles (coordinated omission). A paced user instead owns a
schedule of send times at a fixed interval; when a response comes back after the next slot,
that send is *late*, and every slot that has already fully passed is *dropped* (never sent)
rather than sent in a burst. Reports show both counts, so a run that could not hold its rate
says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class PacingCounts:
    """What happened to the scheduled slots of one or more users."""

    scheduled: int = 0
    sent_on_time: int = 0
    late: int = 0
    dropped: int = 0

    def add(self, other: PacingCounts) -> None:
        self.scheduled += other.scheduled
        self.sent_on_time += other.sent_on_time
        self.late += other.late
        self.dropped += other.dropped

    def as_dict(self) -> dict[str, int]:
        return {"scheduled": self.scheduled, "sent_on_time": self.sent_on_time, "late": self.late, "dropped": self.dropped}


@dataclass
class OpenLoopPacer:
    """Schedule of one user: slot ``k`` is due at ``start + k * interval``."""

    interval_s: float
    offset_s: float = 0.0
    """Delay of the first slot, so users spread their slots over the interval instead of bursting."""
    clock: Callable[[], float] = time.monotonic
    counts: PacingCounts = field(default_factory=PacingCounts)
    _next_due: float | None = None

    def wait_seconds(self) -> float:
        """Seconds to sleep before the next send; advances the schedule and updates the counts."""
        now = self.clock()
        if self._next_due is None:
            self._next_due = now + self.offset_s
        lag = now - self._next_due
        if lag > self.interval_s:
            # Whole slots that passed while the previous request was in flight are never sent.
            missed = int(lag // self.interval_s)
            self.counts.dropped += missed
            self.counts.scheduled += missed
            self._next_due += missed * self.interval_s
            lag = now - self._next_due
        self.counts.scheduled += 1
        if lag > 0:
            self.counts.late += 1
        else:
            self.counts.sent_on_time += 1
        wait = max(0.0, self._next_due - now)
        self._next_due += self.interval_s
        return wait
