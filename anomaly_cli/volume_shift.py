"""Level shifts: a run of buckets on one side of their expectation is one finding, then the normal.

`shift_run` trailing buckets (only those with a meaningful expectation) whose clipped z scores
lie on one side by a median of `shift_z` sigmas, in at least `shift_share` of the run and with
ratios that agree (none under --collapse: a collapse never becomes the normal), make a shift.
It starts where the trail splits best into buckets near the old level and near the new one.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from statistics import median

from anomaly_cli.volume_model import Direction, Flag, Past, Settings

RATIO_AGREEMENT = 6.0  # a shift's largest bucket ratio is at most this multiple of its smallest


@dataclass(frozen=True, slots=True)
class Shift:
    kind: Direction
    start: int  # index of its first bucket
    end: int  # index after its last bucket so far
    members: list[Past]
    scale: float  # new level / old level: the history before `start` is multiplied by it
    reported: bool  # False: a continuation of the previous shift, or a direction not asked for


class ShiftDetector:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.trail: deque[Past] = deque(maxlen=4 * settings.shift_run)
        self._last: tuple[Direction, int] | None = None  # kind and end of the latest shift

    def observe(self, past: Past) -> None:
        self.trail.append(past)

    def run(self) -> set[int]:
        """Indexes of the trailing buckets that all lie on one side of their expectation (2 or more)."""
        trail = list(self.trail)
        if len(trail) < 2 or trail[-1].z is None or trail[-1].z == 0:
            return set()
        sign = 1 if trail[-1].z > 0 else -1
        run: set[int] = set()
        for p in reversed(trail):
            if p.z is None or sign * p.z <= 0:
                break
            run.add(p.index)
        return run if len(run) >= 2 else set()

    def detect(self, index: int, log_sd: float | None = None) -> Shift | None:
        """A level shift ending at this bucket, if the trail now makes one."""
        s = self.s
        run = list(self.trail)[-s.shift_run:]
        if len(run) < s.shift_run or any(p.z is None for p in run):
            return None
        if run[-1].ratio <= s.collapse:  # a fall into a collapse is no new normal, whatever came before
            return None
        for sign, kind in ((-1, Direction.DROP), (1, Direction.SPIKE)):
            zs = [sign * p.z for p in run if p.z is not None]
            half = zs[len(zs) // 2:]
            ratios = [p.ratio for p in run]
            # Medians, not means: one outage day inside an ordinary week is not a new level.
            # One odd bucket (a chance rise, or an outage on top of the shift) may sit in the run.
            low = sorted(ratios)[1]
            if (sum(z > 0 for z in zs) < s.shift_share * len(zs) - 1 or median(zs) < s.shift_z
                    or median(half) < s.shift_z or low <= s.collapse
                    or max(ratios) > RATIO_AGREEMENT * low):
                continue
            level = math.log(max(median(p.ratio for p in run[len(run) // 2:]), 1e-9))
            members = self._since_change(level)
            if len(members) < len(run) // 2:
                continue  # the latest buckets are not at one level yet
            logs = [math.log(max(p.ratio, s.collapse)) for p in members]
            if log_sd is not None and abs(sum(logs) / len(logs)) < s.sensitivity * log_sd / math.sqrt(len(logs)):
                continue  # a week of noise on one side: its mean is within the series' own spread
            scale = self._scale([p for p in members if p.ratio > s.collapse])
            # A bucket under --collapse of the new level too (an outage on top of the shift) is its
            # own finding, never part of the new level: it would overstate the shift.
            members = [p for p in members if p.ratio > s.collapse * scale]
            if not members:
                continue
            scale = self._scale(members)
            if abs(math.log(scale)) < -math.log(1 - s.min_shift):
                continue  # a drift of a few percent: the level factor follows it, no finding
            start = members[0].index
            # A small shift found again right after one the same way is its continuation (the
            # first step under-measured it): adapted to, not reported twice.
            again = self._last is not None and self._last[0] is kind \
                and start - self._last[1] < s.shift_run and 0.5 < scale < 2
            self._last = (kind, index + 1)
            self.trail.clear()
            asked = s.direction is Direction.BOTH or s.direction is kind
            return Shift(kind, start, index + 1, members, scale, asked and not again)
        return None

    @staticmethod
    def _scale(members: list[Past]) -> float:
        """New level / old level: the members' counts against their expectations."""
        expected = sum(p.count / p.ratio if p.ratio else p.count for p in members)
        return sum(p.count for p in members) / expected if expected else 1.0

    def _since_change(self, level: float) -> list[Past]:
        """The trail's buckets from the most likely start of a shift to `level` (log ratio): the
        split that best separates buckets near the old level (0) from those near the new one, by
        squared log distance (clipped, so one outage or one busy day does not move it)."""
        trail = [p for p in self.trail if p.z is not None]
        bound = 2 * abs(level)
        logs = [max(-bound, min(bound, math.log(max(p.ratio, 1e-9)))) for p in trail]
        # Cost of assigning bucket i to the new level rather than the old: (l - level)^2 - l^2.
        gains = [level * level - 2 * level * x for x in logs]
        best, best_cost, cost = len(trail), 0.0, 0.0
        for i in range(len(trail) - 1, -1, -1):
            cost += gains[i]
            if cost < best_cost:
                best, best_cost = i, cost
        return trail[best:]

    def release(self, pending: list[Flag]) -> tuple[list[Flag], list[Flag]]:
        """(held, final): a flag is final once the run on its side has broken since it."""
        keep, done = [], []
        for flag in pending:
            sign = -1 if flag.kind is Direction.DROP else 1
            later = [p for p in self.trail if p.index > flag.start]
            broken = any(p.z is None or sign * p.z <= 0 for p in later) or flag.members[0].z is None
            (done if broken else keep).append(flag)
        return keep, done
