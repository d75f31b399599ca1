"""Volume judgement shared by the checks that count things per bucket (sales, checkout, rates).

expected = median of the same slot of the week (weekday; hour of the week) over the last
`history` weeks x a level factor (the last two weeks' days against their weekdays' medians), so
growth and declines are followed. Var = E + c^2 E^2 (Poisson plus a negative-binomial part, c
fitted robustly to the pooled residuals, widened for its sampling error: stats.c2_bound; the
day totals behind sub-day buckets keep the point fit). A drop: beyond `sensitivity` sigmas (or far below in
log space) with a negative-binomial count test, or, however noisy the series, under `collapse`
of an expectation of at least `min_expected` (days: of its upper interval end, at most 1.5 x) with
a Poisson test. Spikes mirror the sigma rule.
Sub-day buckets are also judged given today's level so far (volume_day.py): the same two rules
against expected x today's level, whose spread is the hour's own, not the day-to-day spread;
an hour under --collapse that today's level does not find improbable is held until its run of
low hours is (or its day proves collapsed).

Flagged buckets stay out of later baselines. A level shift (volume_shift.py: a CUSUM of log
ratios, then a two-sample test; for sub-day buckets, found on the day totals) is one flag from
its first bucket, then the history is rescaled to the new level. While a change is suspected the
level factor is held where it was when it began (days; the hours follow the days unheld). With fewer than `min_history` weeks of a slot, the best fallback
(the same slot of the day over recent days, else the last few) with a spread of at least 30 %,
so only collapses are reported; the basis and its confidence are returned.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from statistics import median, pstdev

from anomaly_cli.stats import c2_bound, fit_c2, median_error, robust_sd, tail_sd
from anomaly_cli.volume_day import DayLevel
from anomaly_cli.volume_rules import (
    assess, at_level, collapsed_drop, drop_given_today, early_low, leave_one_out, quiet_low, weighted_median,
)
from anomaly_cli.volume_run import HELD_IN_RUN, HeldHours, LowRun
from anomaly_cli.volume_model import Basis, Direction, Expectation, Flag, Past, Settings, Verdict
from anomaly_cli.volume_shift import ShiftDetector

__all__ = ["Basis", "Direction", "Expectation", "Flag", "Settings", "Verdict", "VolumeJudge", "judge_series"]

FALLBACK_SPREAD = 0.3  # least relative spread of a fallback baseline: only collapses are reported
LOW_IN_COLLAPSE = 0.5  # in a collapsed day, a meaningful bucket under this share of expected is a drop
Z_CLIP = 3.0  # one extreme bucket must not make a shift on its own


class VolumeJudge:
    """Judges consecutive buckets (gaps filled with zeros by the caller) in time order.

    `feed` returns the flags that are final: a flagged day is held while it may still turn out
    to be the start of a level shift (while the run of days on its side goes on).
    """

    def __init__(self, settings: Settings) -> None:
        self.s = settings
        self._slots: dict[int, deque[Past]] = {}
        self._daily: dict[int, deque[Past]] = {}  # per hour of day (days: one group), 14 days
        self._week: deque[Past] = deque(maxlen=2 * settings.period)  # the last two weeks: the level
        # (residual / sqrt(median error), expected) of unflagged seasonal buckets
        self._pool: deque[tuple[float, float]] = deque(maxlen=settings.period * settings.history)
        self._logs: deque[float] = deque(maxlen=settings.period * settings.history)  # meaningful buckets
        self._log_sd: float | None = None
        self._shifts = ShiftDetector(settings)
        # Sub-day buckets: trend, today's level and shifts come from the day totals.
        self._day = DayLevel(settings, VolumeJudge) if settings.per_day > 1 else None
        self._pending: list[Flag] = []
        self._held = HeldHours()  # sub-day buckets: a low first hour, today's low ones in a day not proven yet
        self._run = LowRun(settings)  # sub-day buckets: consecutive low ones, one event
        self._shift_from: int | None = None
        # (index, level factor its expectation used): a suspected change holds its first one
        self._levels: deque[tuple[int, float]] = deque(maxlen=4 * settings.shift_run)
        self._factor = 1.0  # the level factor of the latest expectation
        self._rebase: tuple[int, float] | None = None  # the latest shift's start and scale, not yet taken
        self._c2: float | None = None  # the point fit (the shift detector's spread)
        self._c2_bound: float | None = None  # allowing for its sampling error (what is judged by)
        self._early_fit: tuple[int, float] | None = None  # (days seen, c^2) before the first week of residuals
        self._since_c2 = 0
        self._medians: dict[int, float | None] = {}

    # --- the baseline -------------------------------------------------------------------------

    def _median(self, slot: int) -> float | None:
        """The slot's current median of usable counts (cached until the slot changes)."""
        if slot not in self._medians:
            usable = [p.count for p in self._slots.get(slot, ()) if p.usable]
            self._medians[slot] = float(median(usable)) if len(usable) >= self.s.min_history else None
        return self._medians[slot]

    def level(self, hold: bool = True) -> float:
        """The current level against the slot medians: last two weeks' counts to their slots' medians.

        Taken against the medians as they are now (not as they were), so that when a slot's
        median catches up with a new level the factor falls back to 1 at the same moment.
        """
        if self._day is not None:
            return self._day.trend()
        # While a change is suspected, the level it started from: a level shift must not be
        # absorbed, bucket by bucket, before it is recognised (and reported) as one.
        suspected = self._shifts.suspected() if hold else None
        if suspected is not None:
            held = next((level for index, level in self._levels if index == suspected), None)
            if held is not None:
                return held
        pairs = []
        run = self._shifts.run()
        for p in self._week:
            if not p.usable or (self._shift_from is not None and p.index < self._shift_from) \
                    or (suspected is not None and p.index >= suspected) or p.index in run:
                continue
            base = self._median(p.slot)
            if base:
                pairs.append((p.count / base, base))
        # Too little behind it (the first days after a shift, a quiet series): no correction.
        if len(pairs) < max(2, self.s.period // 4) or sum(w for _, w in pairs) < self.s.min_expected:
            return 1.0
        return weighted_median(pairs)

    def dispersion(self) -> float | None:
        """c^2 of Var = E + c^2 E^2, from the pooled relative residuals (None before a week of
        them), widened for its own sampling error (`c2_bound`): a week of residuals says little."""
        if len(self._pool) < self.s.period:
            return None
        if self._c2 is None or self._since_c2 >= self.s.per_day:
            pool = list(self._pool)
            self._c2 = fit_c2(pool)
            self._c2_bound = c2_bound(pool, self.s.sensitivity) if self.s.widen else self._c2
            self._log_sd = tail_sd(list(self._logs)) if len(self._logs) >= 21 else None
            self._since_c2 = 0
        return self._c2_bound

    def _early_c2(self) -> float:
        """c^2 before a week of residuals: each usable count of every slot against the median of
        its slot's other counts (scaled back by that median's own uncertainty), widened for its
        sampling error like the pooled fit. A calm shop (100 every Wednesday) stays Poisson."""
        seen = sum(len(h) for h in self._slots.values())
        if self._early_fit is None or self._early_fit[0] != seen // self.s.per_day:
            pool = leave_one_out([[p.count for p in h if p.usable] for h in self._slots.values()],
                                 self.s.min_history)
            c2 = c2_bound(pool, self.s.sensitivity) if len(pool) >= self.s.period else self.s.day_cv2
            self._early_fit = (seen // self.s.per_day, c2)
        return self._early_fit[1]

    def expect(self, slot: int, daily: int) -> tuple[Expectation | None, float]:
        """The expectation for the next bucket of `slot` (and hour of day `daily`), and its slot median."""
        history = [p for p in self._slots.get(slot, ()) if p.usable]
        if len(history) >= self.s.min_history:
            counts = [p.count for p in history]
            base = float(median(counts))
            factor = self._factor = self.level()
            expected = base * factor
            c2 = self.dispersion()
            # The slot's own spread counts too: a few weeks can say the series is noisier than
            # the pooled model. Until three weeks of residuals exist, the fallbacks' wide spread.
            var = max((robust_sd(counts) * factor) ** 2, expected)
            if c2 is None:
                var = max(var, (pstdev(counts) * factor) ** 2 * len(counts) / max(len(counts) - 1, 1))
            # A level shift's z scores keep the point fit: its run rule is calibrated on them.
            point = var if self._c2 is None else max(var, expected + self._c2 * expected * expected)
            if c2 is None and self.s.widen:
                # Nothing judged yet: three or four counts of one slot can lie close together by
                # chance (343, 296, 293 in a series of CV 0.5), so the spread comes from every
                # slot's weeks at once (`_early_c2`).
                c2 = self._early_c2()
            if c2 is not None:
                var = max(var, expected + c2 * expected * expected)
            sigma = math.sqrt(max(var, 1.0) * median_error(len(history)))
            z_sigma = math.sqrt(max(point, 1.0) * median_error(len(history)))
            extra = float(median(p.extra for p in history)) * factor
            log_sd = self._log_sd if self._c2 is not None else None
            return Expectation(expected, extra, sigma, Basis.SEASONAL, len(history), log_sd, c2 or 0.0,
                               z_sigma=z_sigma), base
        group = [p for p in self._daily.get(daily, ()) if p.usable]
        days = 7 if self.s.per_day == 1 else 5
        if len(group) >= days:
            basis = Basis.ALL_DAYS
        else:
            group = group[-7:]
            if len(group) < self.s.min_recent:
                return None, 0.0
            basis = Basis.RECENT
        expected = float(median(p.count for p in group))
        extra = float(median(p.extra for p in group))
        seen = self._slots.get(slot)
        if seen:  # never expect more than its own slot has held (flagged or not: a closed Sunday)
            most = max(p.count for p in seen)
            if most < expected:
                extra, expected = extra * (most / expected), most
        var = max(robust_sd(p.count for p in group) ** 2, expected, (FALLBACK_SPREAD * expected) ** 2)
        sigma = math.sqrt(max(var, 1.0) * median_error(len(group)))
        return Expectation(expected, extra, sigma, basis, len(group), None, FALLBACK_SPREAD ** 2), 0.0

    def _expect_given_today(self, e: Expectation) -> Expectation | None:
        """A sub-day bucket's expectation given today's level so far (None for day buckets)."""
        if self._day is None:
            return None
        today = self._day.today()
        expected = e.count * today.level
        sigma = math.sqrt(max(expected + today.c2 * expected * expected, 1.0))
        return Expectation(expected, e.extra * today.level, sigma, e.basis, e.size, None, today.c2, today.shared)

    # --- judging --------------------------------------------------------------------------------

    def _given_today(self, count: float, e: Expectation, given: Expectation,
                     kind: Direction | None) -> tuple[Direction | None, Expectation, str | None]:
        """A sub-day bucket's drop verdict given today: (kind, the expectation that made it, held:
        "suspect" when low in a day not yet proven collapsed, "run" when under --collapse of its
        own expectation but not improbable given today's level, "run or suspect" when both)."""
        assert self._day is not None
        # Like the collapse rule, only where either expectation is meaningful (--min-expected).
        if max(e.count, given.count) >= self.s.min_expected and drop_given_today(self.s, count, given):
            return Direction.DROP, given, None
        collapsed = self._day.collapsed(count, e.count)
        # In a collapsed day 12 % of 30 by Poisson chance is part of it, and so is an hour whose
        # median (9) reads a little under --min-expected.
        low = kind is None and e.count >= self.s.min_expected / 2 and count < LOW_IN_COLLAPSE * e.count
        if low and collapsed is True:
            return Direction.DROP, e, None
        if kind is Direction.DROP and collapsed is not True and collapsed_drop(self.s, count, e, self._day is None):
            # Under --collapse of its week-slot expectation, but today runs low (a day at 34 %
            # expects 9, not 26, and 1 against 9 is chance): the expected volume is today's.
            # Held: reported when the day proves collapsed, or when the run of low buckets it
            # starts is improbable given today (three outage hours at 0 against 5 each).
            if e.basis is Basis.SEASONAL:
                return None, e, "run" if collapsed is False else "run or suspect"
            if collapsed is None:
                return None, e, "suspect"
        if kind is Direction.DROP and collapsed is False:
            # A day running low all along, this bucket with it, by the spread rules: no drop
            # (a fallback's collapse ignores the weekday, today's level knows it).
            return None, e, None
        return kind, e, "suspect" if low and collapsed is None else None

    def _run_step(self, past: Past, e: Expectation | None, given: Expectation | None, kind: Direction | None,
                  held: str | None, early: bool) -> list[Flag]:
        """The run of consecutive low sub-day buckets (volume_run.py): held ones (and a held first
        business hour) are reported when the run is improbable given today, else part of the
        normal (or suspects) when it ends."""
        low = given is not None and (held in HELD_IN_RUN or early or kind is Direction.DROP)
        for m in self._run.end(past.index if low else -2):
            assert m.flag is not None
            self._mark(m.flag.members[0], usable=True)  # a chance low hour after all: part of the normal,
            if m.maybe:  # unless its day still proves collapsed
                self._held.suspects.append(m.flag)
        if not low or given is None:
            return []
        flag = self._held.early if early else None
        if held in HELD_IN_RUN:  # out of the baselines while it may be an outage (a quiet hour: mostly chance)
            past.usable = held == "quiet"
            flag = Flag(Direction.DROP, past.index, past.index + 1, past.count, past.extra,
                        given.count, given.extra, given.basis, members=[past])
        found = self._run.add(past.index, past.count, given, flag, held == "run or suspect", held == "quiet")
        assert self._day is not None
        if self._day.collapsed(0.0, 0.0) is True:  # its day proves collapsed: so are its held ones
            found += self._run.release_maybe()
        return self._taken(found)

    def feed(self, index: int, slot: int, daily: int, count: float, extra: float = 0.0) -> tuple[Verdict, list[Flag]]:
        """Judge one bucket; return its verdict and the flags that became final."""
        done: list[Flag] = []
        if self._day is not None:
            shift = self._day.next_bucket(index, slot, daily)
            if shift is not None:
                self._rescale(shift.start, shift.scale)
                done += [shift.flag] if shift.flag is not None else []
        e, base = self.expect(slot, daily)
        kind = assess(self.s, count, e, self._day is None) if e is not None else None
        given = self._expect_given_today(e) if e is not None else None
        held: str | None = None
        if given is not None and kind is not Direction.SPIKE and self.s.direction is not Direction.SPIKE:
            kind, e, held = self._given_today(count, e, given, kind)
        past = Past(index, slot, count, extra, usable=kind is None, base=base)
        if self._day is None and e is not None and e.basis is Basis.SEASONAL:
            self._levels.append((index, self._factor))
        if e is not None:
            past.ratio = count / e.count if e.count > 0 else 1.0
            if e.basis is Basis.SEASONAL:
                past.z = max(-Z_CLIP, min(Z_CLIP, (count - e.count) / (e.z_sigma or e.sigma)))
                if kind is None and held is None and e.count >= 1:
                    # Scaled back by the median's own uncertainty, which sigma adds again.
                    scale = math.sqrt(median_error(e.size))
                    self._pool.append(((count - e.count) / scale, e.count))
                    if e.count >= self.s.min_expected:
                        self._logs.append(math.log((count + 0.5) / (e.count + 0.5)))
                    self._since_c2 += 1
        early = kind is None and held is None and e is not None and self._day is not None \
            and early_low(self.s, count, e, self._day.measured())
        if held is None and kind is None and not early and given is not None \
                and quiet_low(self.s, count, given, [p.count for p in self._slots.get(slot, ())]):
            held = "quiet"  # maybe an outage of hours that each expect little: its run decides
        if self._day is not None:
            unconditional = None if given is None else given.count / max(self._day.today().level, 1e-9)
            self._day.add(count, extra, unconditional, None if given is None else given.count,
                          kind is None and held not in ("run", "run or suspect") and not early)
        # Appended after judging: a bucket is never part of its own baseline.
        self._slots.setdefault(slot, deque(maxlen=self.s.history)).append(past)
        self._medians.pop(slot, None)
        self._daily.setdefault(daily, deque(maxlen=14)).append(past)
        self._week.append(past)
        flag = None if kind is None or e is None else Flag(
            kind, index, index + 1, count, extra, e.count, e.extra, e.basis, members=[past], judged=e)
        if self._day is not None:  # hours: final at once (a shift is found on the days)
            done += self._taken(self._held.first_hour(past, e, kind, early)) \
                + self._taken(self._held.suspected(self._day, past, e, held == "suspect"))
            found = self._run_step(past, e, given, kind, held, early)
            if self._held.early is not None and self._held.early in found:
                self._held.early = None  # reported by its run: not again by the next hour
            done += [f for f in found if all(f is not d for d in done)]  # the first hour may be in both
            return Verdict(e, kind), done + ([flag] if flag is not None else [])
        # Only buckets with a meaningful expectation speak of a shift: a quiet night hour's
        # count is Poisson chance whatever the level, and it would break every run.
        # The series' log spread, or the one its c^2 (else the assumed c^2 of days) implies if
        # larger: a few weeks of logs can read narrow by chance.
        spread = math.sqrt(math.log1p(self._c2 if self._c2 is not None else self.s.day_cv2))
        if e is None or e.basis is not Basis.SEASONAL or e.count >= self.s.min_expected:
            self._shifts.observe(past, max(spread, self._log_sd or 0.0))
        if flag is not None:
            self._pending.append(flag)
        shift = self._shifts.detect(index)
        if shift is not None:
            for p in shift.members:
                p.usable = True  # the new level is the normal: it enters the baselines
            # The scale is against expectations that held a level factor (a trend so far); the
            # rescaled medians carry it, as the factor restarts from the new level.
            held = next((level for index, level in self._levels if index == shift.start), 1.0)
            self._rescale(shift.start, shift.scale * held)
            # Flags inside the shift are part of it, except collapses (not members): final now.
            members = {p.index for p in shift.members}
            done += [f for f in self._pending if f.start >= shift.start and f.start not in members]
            self._pending = [f for f in self._pending if f.start < shift.start]
            if shift.reported:
                done.append(Flag(shift.kind, shift.start, shift.end, sum(p.count for p in shift.members),
                                 sum(p.extra for p in shift.members),
                                 sum(p.count / p.ratio if p.ratio else p.count for p in shift.members),
                                 0.0, Basis.SEASONAL, shift=True, members=shift.members))
        self._pending, final = self._shifts.release(self._pending)
        return Verdict(e, kind), done + self._at_suspected_level(final)

    def _at_suspected_level(self, flags: list[Flag]) -> list[Flag]:
        """Held flags made final while a change their way is past its decision bar, unconfirmed:
        judged again at the level it suggests. A day at 20 % of the old level in a shop that
        halved is 40 % of its new normal, not an outage (nor one finding a week until confirmed);
        under --collapse of the new level too, it stays (with that expectation)."""
        out = []
        for f in flags:
            scale = self._shifts.suspected_level(f.kind)
            if scale is None or f.judged is None or f.shift or not f.members or not self.s.rejudge:
                out.append(f)
                continue
            moved = at_level(f.judged, scale)
            if assess(self.s, f.count, moved, True) is f.kind:
                f.expected, f.expected_extra = moved.count, moved.extra
                out.append(f)
            else:  # part of the new level after all: its baselines take it
                self._mark(f.members[0], usable=True)
        return out

    def _mark(self, past: Past, usable: bool) -> None:
        """A judged bucket joins (or leaves) the baselines: its slot's median is computed again."""
        past.usable = usable
        self._medians.pop(past.slot, None)

    def _taken(self, found: list[Flag]) -> list[Flag]:
        """Held sub-day flags made final: out of the baselines from now on."""
        for f in found:
            self._mark(f.members[0], usable=False)
        return found

    def _rescale(self, start: int, scale: float) -> None:
        """The history before a shift, rescaled to the new level, so the slot medians agree with
        it at once instead of flipping one slot at a time weeks later."""
        for history in self._slots.values():
            for p in history:
                if p.index < start:
                    p.count *= scale
                    p.extra *= scale
        self._medians.clear()
        self._shift_from = start
        self._levels.clear()
        self._rebase = (start, scale)

    def take_rebase(self) -> tuple[int, float] | None:
        """The latest shift's (start, scale) if not taken yet (the day judge behind sub-day buckets)."""
        rebase, self._rebase = self._rebase, None
        return rebase

    def finish(self) -> list[Flag]:
        """The flags still held when the series ends."""
        done, self._pending = self._pending, []
        return self._at_suspected_level(done)


def judge_series(settings: Settings, buckets: Iterable[tuple[int, int, int, float, float]]) -> list[Flag]:
    """All flags of a series of (index, slot, daily, count, extra), in time order (for tests and tools)."""
    judge = VolumeJudge(settings)
    flags: list[Flag] = []
    for index, slot, daily, count, extra in buckets:
        flags += judge.feed(index, slot, daily, count, extra)[1]
    flags += judge.finish()
    return sorted(flags, key=lambda f: f.start)
