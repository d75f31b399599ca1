"""Level shifts: a lasting change of level is one finding, then the normal.

Evidence is the log ratio of each meaningful bucket to its expectation, which is as noisy as the
series' own log spread `sd` (about 0.5 for days that wander by 50 %). Two one-sided CUSUMs
accumulate it: down = max(0, down - log ratio - k), with k half the smallest shift (--min-shift
20 %: k = 0.11) and each log clipped at 3 sd (one odd day is not a level). A halving adds about
0.58 a day, so it passes the decision bar of `shift_h` sd (6 x 0.5 = 3) within a week or two
however noisy the days are, where one day's z score (under one sigma) never could. While the sum
is above a third of that bar the change is suspected: the judge's level factor leaves the
suspected buckets out (they must not pull the baseline to the new level before it is reported).
A shift needs at least `shift_run` buckets since the change, a median log ratio beyond
--min-shift in all of them and in the latest half (medians: one outage inside an ordinary week
is not a new level), and a mean beyond `sensitivity` standard errors. It starts where the trail
splits best into buckets near the old level and near the new one. Buckets under --collapse are
no evidence and never members: an outage stays its own finding, a collapse never the normal.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from statistics import fmean, median

from anomaly_cli.stats import tail_sd
from anomaly_cli.volume_model import Direction, Flag, Past, Settings

SUSPECT = 1 / 3  # share of the decision bar above which a change is suspected (the level is held)
CLIP_SD = 3.0
DEAD_ZONE = 1.5  # x --collapse: the zone a day is a collapse in (the upper end of its interval)
MIN_SD = 0.05  # the least log spread a two-sample test assumes (Poisson noise of thousands)  # a bucket's log ratio counts at most this many log sds


@dataclass(frozen=True, slots=True)
class Shift:
    kind: Direction
    start: int  # index of its first bucket
    end: int  # index after its last bucket so far
    members: list[Past]
    scale: float  # new level / old level: the history before `start` is multiplied by it
    reported: bool  # False: a continuation of the previous shift, or a direction not asked for


@dataclass(slots=True)
class _Side:
    """One one-sided CUSUM: its sum and the buckets since it last stood at zero."""

    sign: int  # -1: drops, +1: rises
    kind: Direction
    total: float = 0.0
    hits: int = 0  # buckets since then beyond the smallest shift on this side
    since: list[Past] | None = None

    def reset(self) -> None:
        self.total, self.since, self.hits = 0.0, None, 0


class ShiftDetector:
    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self.trail: deque[Past] = deque(maxlen=8 * settings.shift_run)
        self._sides = (_Side(-1, Direction.DROP), _Side(1, Direction.SPIKE))
        self._sd = math.sqrt(math.log1p(settings.day_cv2))
        self._last: tuple[Direction, int] | None = None  # kind and end of the latest shift

    @property
    def _k(self) -> float:
        return -0.5 * math.log(1 - self.s.min_shift)

    def observe(self, past: Past, sd: float | None = None) -> None:
        """A judged bucket with a meaningful expectation (or none); `sd`: the series' log spread."""
        if sd is not None and sd > 0:
            self._sd = sd
        self.trail.append(past)
        if past.z is None or past.ratio <= self.s.collapse:
            return  # no seasonal expectation, or an outage: no evidence of a level
        for side in self._sides:
            self._step(side, past)
            if side.since is not None and len(side.since) > 4 * self.s.shift_run:
                side.reset()  # so long undecided: a drift, followed

    def _step(self, side: _Side, past: Past) -> None:
        """One bucket of evidence into one side's sum."""
        bound = self._bound()
        x = max(-bound, min(bound, math.log(max(past.ratio, 1e-9))))
        side.total = max(0.0, side.total + side.sign * x - self._k)
        if side.total == 0.0:
            side.since, side.hits = None, 0
        else:
            side.since = (side.since or []) + [past]
            side.hits += side.sign * x > 2 * self._k

    def run(self) -> set[int]:
        """Indexes of the trailing buckets that all lie on one side of their expectation (2 or more):
        left out of the level factor too, so that two busy days do not lift the next expectation."""
        run: set[int] = set()
        trail = list(self.trail)
        if len(trail) < 2 or trail[-1].z is None or trail[-1].z == 0:
            return run
        sign = 1 if trail[-1].z > 0 else -1
        for p in reversed(trail):
            if p.z is None or sign * p.z <= 0:
                break
            run.add(p.index)
        return run if len(run) >= 2 else set()

    def _bound(self) -> float:
        """How far one bucket's log ratio counts: 3 log sds, and at least twice the smallest shift."""
        return max(CLIP_SD * self._sd, 4 * self._k)

    def _bar(self) -> float:
        return self.s.shift_h * max(self._sd, self._k)

    def suspected_level(self, kind: Direction) -> float | None:
        """New level / old level of a change of this kind whose sum is past the decision bar but
        not confirmed by the two-sample test (yet): its buckets against their expectations."""
        side = self._sides[0 if kind is Direction.DROP else 1]
        if not side.since or side.total <= self._bar():
            return None
        members = [p for p in side.since if p.ratio > self.s.collapse]
        if len(members) < self.s.shift_run:
            return None
        # A level: few days in the collapse zone among it, and no significant trend on its way
        # (a least-squares slope over it moving the level on by --min-shift, two standard errors
        # from none). A fall to nothing (over two weeks to 5 %) is no new level to judge its own
        # collapses by; a noisy shop's days wander by chance.
        dead = sum(p.z is not None and p.ratio <= DEAD_ZONE * self.s.collapse for p in self.trail
                   if p.index >= side.since[0].index)
        if dead > len(members) // 4 or self._falling(side.sign, members):
            return None
        scale = self._scale(members)
        return scale if side.sign * math.log(scale) > 0 else None

    def _falling(self, sign: int, members: list[Past]) -> bool:
        """Whether the members' log ratios still move on `sign`'s way: by --min-shift over them,
        with a slope two standard errors from none."""
        n = len(members)
        xs = [float(p.index) for p in members]
        ys = [math.log(p.ratio) for p in members]
        mx, my = fmean(xs), fmean(ys)
        sxx = sum((x - mx) ** 2 for x in xs)
        slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
        residual = sum((y - my - slope * (x - mx)) ** 2 for x, y in zip(xs, ys, strict=True))
        error = math.sqrt(residual / max(n - 2, 1) / sxx) if sxx else math.inf
        moved = sign * slope * (xs[-1] - xs[0])
        return moved > -math.log(1 - self.s.min_shift) and sign * slope > 2 * error

    def suspected(self) -> int | None:
        """The first bucket of a change under way (left out of the level factor), if any."""
        starts = [side.since[0].index for side in self._sides
                  if side.since and side.total > SUSPECT * self._bar()]
        return min(starts) if starts else None

    def detect(self, index: int) -> Shift | None:
        """A level shift ending at this bucket, if the evidence now makes one."""
        s = self.s
        for side in self._sides:
            run = side.since
            if not run or side.total <= self._bar() or len(run) < s.shift_run:
                continue
            if self.trail[-1].ratio <= s.collapse:  # a fall into a collapse is no new normal
                return None
            found = self._split(side.sign, run[0].index)
            if found is None:
                continue
            members = [p for p in self.trail if p.index >= found and p.z is not None]
            scale = self._scale([p for p in members if p.ratio > s.collapse])
            # A bucket under --collapse of the new level too (an outage on top of the shift) is its
            # own finding, never part of the new level: it would overstate the shift.
            members = [p for p in members if p.ratio > s.collapse * scale]
            if not members:
                continue
            scale = self._scale(members)
            if side.sign * math.log(scale) < -math.log(1 - s.min_shift):
                continue  # a drift of a few percent: the level factor follows it, no finding
            start = members[0].index
            # A small shift found again right after one the same way is its continuation (the
            # first step under-measured it): adapted to, not reported twice.
            again = self._last is not None and self._last[0] is side.kind \
                and start - self._last[1] < s.shift_run and 0.5 < scale < 2
            self._last = (side.kind, index + 1)
            self.trail.clear()
            for other in self._sides:
                other.reset()
            asked = s.direction is Direction.BOTH or s.direction is side.kind
            return Shift(side.kind, start, index + 1, members, scale, asked and not again)
        return None

    def _split(self, sign: int, since: int) -> int | None:
        """The first bucket of a shift to the `sign` side, if the trail holds one. Its start is
        the least-squares split of the trail (two levels) near where the CUSUM began; with fewer
        than `shift_run` buckets after it, not yet. Then a two-sample test on log(count / slot
        median) of up to four runs before it against all after it: the slot medians' own errors
        are common to both sides and cancel, where against the expectation they would not (a
        level factor from two noisy weeks is itself off by 0.1-0.2). Both sides' medians, and
        the later half's, must differ by --min-shift too."""
        s = self.s
        points = [(p.index, math.log(max(p.count, 0.5) / p.base)) for p in self.trail
                  if p.z is not None and p.base > 0 and p.ratio > s.collapse]
        if len(points) < 2 * s.shift_run:
            return None
        mid = median(x for _, x in points)
        bound = self._bound()
        logs = [max(mid - bound, min(mid + bound, x)) for _, x in points]
        first = next((i for i, (index, _) in enumerate(points) if index >= since), len(points))
        best, least = None, math.inf
        total, squares = sum(logs), sum(x * x for x in logs)
        head = head2 = 0.0
        for i, x in enumerate(logs[:-2]):
            head, head2 = head + x, head2 + x * x
            cut = i + 1
            if cut < max(s.shift_run, first - s.shift_run):
                continue
            tail, tail2, rest = total - head, squares - head2, len(logs) - cut
            sse = head2 - head * head / cut + tail2 - tail * tail / rest
            if sse < least and sign * (tail / rest - head / cut) > 0:
                best, least = cut, sse
        if best is None or len(logs) - best < s.shift_run:
            return None  # no change this way, or too recent to judge yet
        before, after = logs[max(0, best - 4 * s.shift_run):best], logs[best:]
        floor = -math.log(1 - s.min_shift)
        mb, ma = median(before), median(after)
        if sign * (ma - mb) < floor or sign * (median(after[len(after) // 2:]) - mb) < floor:
            return None
        # The spread of these very values about their sides' medians (the series' own log
        # spread, measured on other residuals, reads wider where the level factor wanders).
        sd = max(tail_sd([x - mb for x in before] + [x - ma for x in after]), MIN_SD)
        t = sign * (fmean(after) - fmean(before)) / (sd * math.sqrt(1 / len(before) + 1 / len(after)))
        return points[best][0] if t >= s.sensitivity else None

    @staticmethod
    def _scale(members: list[Past]) -> float:
        """New level / old level: the members' counts against their expectations."""
        expected = sum(p.count / p.ratio if p.ratio else p.count for p in members)
        return sum(p.count for p in members) / expected if expected else 1.0

    def release(self, pending: list[Flag]) -> tuple[list[Flag], list[Flag]]:
        """(held, final): a flag is held while the run of buckets on its side goes on since it, or
        while a change on its side begun at or before it is suspected on the evidence of three
        buckets or more (it may be part of the shift: a day at 9 % of the old level is 20 % of the
        new). One low day followed by ordinary ones is final the next day."""
        keep, done = [], []
        for flag in pending:
            sign = -1 if flag.kind is Direction.DROP else 1
            side = self._sides[0 if sign < 0 else 1]
            later = [p for p in self.trail if p.index > flag.start]
            first = flag.members[0] if flag.members else None
            run = first is not None and first.z is not None and not any(p.z is None or sign * p.z <= 0 for p in later)
            suspected = first is not None and first.z is not None and side.since is not None \
                and side.since[0].index <= flag.start and side.hits >= 3 and side.total > SUSPECT * self._bar()
            (keep if run or suspected else done).append(flag)
        return keep, done
