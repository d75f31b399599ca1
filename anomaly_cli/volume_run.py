"""A run of consecutive low sub-day buckets, judged as one event given today's level.

An hour under --collapse of its week-slot expectation on a day running low (1 sale against 26
where today's level expects 9) is chance on its own; three outage hours at 0 against 5 each are
not. The run's held buckets are reported once the run's sum is improbable given today: one
negative-binomial test of the summed count against the summed expectation, with Var = W +
c^2 W^2 where c^2 = (sum of each hour's own c^2 x E^2) / W^2 + the level's uncertainty (shared
by all its hours, so it does not shrink with the run's length). A run that ends short of that is
forgotten: its held buckets were chance.

Quiet members (volume_rules.quiet_low): hours under --collapse of an expectation given today too
small for the collapse rule (a blackout of four hours at 0 against 7-10 each). A run holding one
is reported only when it is also a collapse as a whole: its summed expectation at least
--min-expected and its summed count under --collapse of it, and the same test improbable. Hours
expecting under a fifth of --min-expected (nights), or whose slot held as little in two of its
weeks, are no members: they end a run, so quiet nights never add up to an outage.

HeldHours keeps the other sub-day buckets held on today's evidence: a low first business hour
(until the next hour says) and today's low hours while the day may still prove collapsed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from anomaly_cli.stats import count_lower_tail
from anomaly_cli.volume_model import Direction, Expectation, Flag, Past, Settings

if TYPE_CHECKING:
    from anomaly_cli.volume_day import DayLevel

# The judge's `held` of a bucket that waits for its run: under --collapse of its own meaningful
# expectation ("run or suspect": in a day not yet proven either way), or a quiet one.
HELD_IN_RUN = ("run", "run or suspect", "quiet")


@dataclass(slots=True)
class Member:
    flag: Flag | None  # held, not reported yet; None: reported already (by itself or the run)
    count: float
    expected: float  # given today
    own_c2: float  # the hour's own part of its c^2
    maybe: bool  # held in a day not yet proven either way: a suspect if the run fails
    quiet: bool = False  # too small for the collapse rule on its own (quiet_low): the sum decides


class LowRun:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.members: list[Member] = []
        self._next = -1  # the bucket index that continues the run

    def end(self, index: int) -> list[Member]:
        """Ends the run unless `index` continues it; the held members it leaves behind."""
        if index == self._next:
            return []
        left = [m for m in self.members if m.flag is not None]
        self.members = []
        return left

    def add(self, index: int, count: float, given: Expectation, flag: Flag | None, maybe: bool,
            quiet: bool = False) -> list[Flag]:
        """A low bucket (`flag`: held; None: reported already); the held flags it makes final."""
        self._next = index + 1
        self.members.append(Member(flag, count, given.count, max(given.c2 - given.shared, 0.0), maybe, quiet))
        total = sum(m.count for m in self.members)
        wanted = sum(m.expected for m in self.members)
        if wanted <= 0:
            return []
        if any(m.quiet for m in self.members) and (wanted < self.s.min_expected or total >= self.s.collapse * wanted):
            return []  # quiet hours count only as a collapse of a meaningful sum
        c2 = sum(m.own_c2 * m.expected ** 2 for m in self.members) / wanted ** 2 + given.shared
        if count_lower_tail(math.floor(total), wanted, c2) > self.s.alpha:
            return []
        found = [m.flag for m in self.members if m.flag is not None]
        for m in self.members:
            m.flag, m.maybe = None, False
        return found

    def release_maybe(self) -> list[Flag]:
        """The held members of a day not yet proven either way, once it proves collapsed."""
        found = [m.flag for m in self.members if m.flag is not None and m.maybe]
        for m in self.members:
            if m.maybe:
                m.flag, m.maybe = None, False
        return found


@dataclass(slots=True)
class HeldHours:
    early: Flag | None = None  # a low first hour, until the next one says
    suspects: list[Flag] = field(default_factory=list)  # today's low ones while the day may be a collapse

    def first_hour(self, past: Past, e: Expectation | None, kind: Direction | None, early: bool) -> list[Flag]:
        """The held first-hour bucket, reported when this next bucket is a drop; this one held if early."""
        held, self.early = self.early, None
        found = []
        if held is not None and kind is Direction.DROP and past.index == held.end:
            found.append(held)
        if early and e is not None:
            self.early = Flag(Direction.DROP, past.index, past.index + 1, past.count, past.extra,
                              e.count, e.extra, e.basis, members=[past])
        return found

    def suspected(self, day: DayLevel, past: Past, e: Expectation | None, suspect: bool) -> list[Flag]:
        """Today's low buckets, reported once the day is proven collapsed (its first meaningful
        hours cannot tell a collapse from a quiet day yet); forgotten when the day ends."""
        if self.suspects and day.first is not None and self.suspects[0].start < day.first:
            self.suspects = []
        if suspect and e is not None:
            self.suspects.append(Flag(Direction.DROP, past.index, past.index + 1, past.count, past.extra,
                                      e.count, e.extra, e.basis, members=[past]))
            return []
        if not self.suspects or day.collapsed(0.0, 0.0) is not True:
            return []
        found, self.suspects = self.suspects, []
        return found
