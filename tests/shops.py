"""Shop transactions as a new user's database holds them, with planted incidents and their truth.

Independent of tests/series.py (which the volume method is tuned against): other shop profiles,
other noise, other calendars. Each shop is generated hour by hour in its own time zone:

    rate(hour) = per_day x weekday weight x hour weight x level(t)
    count      = Poisson(rate x day noise x hour noise)       (gamma-Poisson: negative binomial)

level(t) holds a trend, a Christmas-like month, a lasting level shift and a gradual decline;
day noise is gamma with the profile's coefficient of variation (0.3-0.6), hour noise gamma with
CV 0.15. Planted incidents replace the count by Poisson(rate x factor) (factor 0-8 %). Rows are
stored as the shop's local wall clock (a daylight-saving spring has no 02:00, an autumn two) or
as UTC. The truth is kept per stored bucket (day and hour): the normal expectation, and the
expectation with the incidents planted, so any bucket's ratio says whether it is an incident.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Profile:
    name: str
    per_day: float  # mean transactions per day (before weekday weights)
    weekday: tuple[float, ...]  # Monday..Sunday, mean 1
    hours: tuple[float, ...]  # 24 weights, sum 1
    cv: float  # day-to-day coefficient of variation
    fail_rate: float  # share of FAILED rows
    amount: float  # median amount


def _norm(values: list[float], total: float) -> tuple[float, ...]:
    s = sum(values)
    return tuple(v * total / s for v in values)


def _bump(peak: float, width: float, floor: float) -> list[float]:
    """A day shape peaking at `peak` o'clock (circular), `floor` share at the far side."""
    out = []
    for h in range(24):
        d = min(abs(h + 0.5 - peak), 24 - abs(h + 0.5 - peak))
        out.append(floor + math.exp(-0.5 * (d / width) ** 2))
    return out


PROFILES: dict[str, Profile] = {
    # Round the clock, nearly flat: every hour is meaningful.
    "flat247": Profile("flat247", 1500, _norm([1, 1, 1, 1, 1.05, 1.1, 1.05], 7),
                       _norm([0.8 + 0.2 * math.sin(h / 24 * 2 * math.pi) for h in range(24)], 1), 0.35, 0.04, 40),
    # B2B: office hours on weekdays, nearly nothing at weekends.
    "b2b": Profile("b2b", 600, _norm([1.1, 1.2, 1.2, 1.15, 1.0, 0.04, 0.02], 7),
                   _norm([0.01] * 7 + [0.3, 1, 1.2, 1.2, 1.0, 0.7, 1.1, 1.2, 1.1, 0.8, 0.3] + [0.03] * 6, 1),
                   0.45, 0.06, 2400),
    # A night owl: peaks at 22:00, busy until 02:00, weekends strongest.
    "nightowl": Profile("nightowl", 900, _norm([0.8, 0.85, 0.9, 0.95, 1.15, 1.25, 1.1], 7),
                        _norm(_bump(22, 3.0, 0.05), 1), 0.5, 0.05, 25),
    # A small shop: about 60 sales a day, very noisy.
    "small": Profile("small", 60, _norm([1, 1, 1, 1.1, 1.2, 0.9, 0.7], 7),
                     _norm(_bump(14, 4.0, 0.02), 1), 0.6, 0.05, 300),
    # A big shop: about 20,000 a day.
    "big": Profile("big", 20000, _norm([1.05, 1.0, 1.0, 1.0, 1.05, 0.95, 0.95], 7),
                   _norm(_bump(19, 5.0, 0.08), 1), 0.3, 0.03, 80),
}


@dataclass(frozen=True)
class Incident:
    kind: str  # "day" (a whole local day), "hours" (an outage), "stall" (no rows at the end)
    start: datetime  # local wall clock
    end: datetime
    factor: float  # share of the normal volume that still arrives


@dataclass
class Scenario:
    profile: str
    seed: int
    start: datetime  # local midnight, first day
    days: int
    zone: str = "Europe/Berlin"
    storage: str = "local"  # "local": the shop's wall clock; "utc"
    trend: float = 1.0  # level multiplier per week (compounded)
    christmas: bool = False  # ramp to 1.8x by Dec 18, lull 0.75x Dec 27 - Jan 5
    shift: tuple[int, float] | None = None  # (day index, new level)
    decline: tuple[int, int, float] | None = None  # (first day, days, final level)
    day_incidents: int = 2
    hour_incidents: int = 2
    stall_hours: int = 0
    bad_rows: int = 0
    incidents_from: int = 28  # earliest day index for a planted incident (history first)
    cv: float | None = None  # overrides the profile's

    @property
    def name(self) -> str:
        extra = [self.storage]
        if self.trend != 1.0:
            extra.append(f"trend{self.trend:g}")
        if self.christmas:
            extra.append("xmas")
        if self.shift:
            extra.append(f"shift{self.shift[1]:g}")
        if self.decline:
            extra.append(f"decline{self.decline[2]:g}")
        if self.stall_hours:
            extra.append(f"stall{self.stall_hours}h")
        if self.bad_rows:
            extra.append("badrows")
        return f"{self.profile}-{self.days}d-{'-'.join(extra)}-s{self.seed}"


@dataclass
class Shop:
    scenario: Scenario
    end: datetime  # stored clock: the moment scans are run at (--until)
    rows: list[tuple]  # (transaction_id, customer_id, transaction_date, status, total_amount)
    customers: int
    # Truth per stored bucket start (naive, stored clock): [normal expected, planted expected, actual]
    day_truth: dict[datetime, list[float]] = field(default_factory=dict)
    hour_truth: dict[datetime, list[float]] = field(default_factory=dict)
    incidents: list[Incident] = field(default_factory=list)
    shift_day: datetime | None = None  # stored-clock day a level shift starts
    decline_span: tuple[datetime, datetime] | None = None
    lull_span: tuple[datetime, datetime] | None = None
    day_noise: dict[datetime, float] = field(default_factory=dict)  # local date -> gamma draw


def _level(s: Scenario, local: datetime) -> float:
    day = (local - s.start).total_seconds() / 86400
    level = s.trend ** (day / 7)
    if s.christmas:
        year = local.year if local.month >= 10 else local.year - 1
        ramp0, peak, lull0, lull1 = (datetime(year, 11, 25), datetime(year, 12, 18),
                                     datetime(year, 12, 27), datetime(year + 1, 1, 6))
        if ramp0 <= local < peak:
            level *= 1 + 0.8 * (local - ramp0) / (peak - ramp0)
        elif peak <= local < lull0:
            level *= 1.8
        elif lull0 <= local < lull1:
            level *= 0.75
    if s.shift and day >= s.shift[0]:
        level *= s.shift[1]
    if s.decline:
        first, span, final = s.decline
        if day >= first:
            level *= 1 - (1 - final) * min(1.0, (day - first) / span)
    return level


def _plant(s: Scenario, p: Profile, rng: np.random.Generator) -> list[Incident]:
    """Whole days at 0-8 % and 2-4 hour outages at 0-5 % in busy hours, apart from each other."""
    out: list[Incident] = []
    taken: set[int] = set()
    busy = [h for h in range(24) if p.hours[h] >= 0.7 * max(p.hours)]
    candidates = [d for d in range(s.incidents_from, s.days - 1)
                  if p.weekday[(s.start + d * DAY).weekday()] >= 0.5]
    for kind, n in (("day", s.day_incidents), ("hours", s.hour_incidents)):
        for _ in range(n):
            free = [d for d in candidates if not taken & {d - 1, d, d + 1}]
            if not free:
                break
            d = int(rng.choice(free))
            taken.add(d)
            day = s.start + d * DAY
            if kind == "day":
                out.append(Incident("day", day, day + DAY, float(rng.uniform(0, 0.08))))
            else:
                length = int(rng.integers(2, 5))
                first = int(rng.choice([h for h in busy if h + length <= 24] or busy[:1]))
                out.append(Incident("hours", day + first * HOUR, day + (first + length) * HOUR,
                                    float(rng.uniform(0, 0.05))))
    return out


def generate(s: Scenario) -> Shop:
    p = PROFILES[s.profile]
    rng = np.random.default_rng([s.seed, zlib.crc32(s.name.encode())])
    zone = ZoneInfo(s.zone)
    cv = s.cv if s.cv is not None else p.cv
    k_day, k_hour = 1 / cv ** 2, 1 / 0.15 ** 2
    incidents = _plant(s, p, rng)
    local_end = s.start + s.days * DAY
    if s.stall_hours:
        incidents.append(Incident("stall", local_end - s.stall_hours * HOUR, local_end, 0.0))
    utc0 = s.start.replace(tzinfo=zone).astimezone(timezone.utc)
    utc1 = local_end.replace(tzinfo=zone).astimezone(timezone.utc)

    def stored(utc: datetime) -> datetime:
        moment = utc if s.storage == "utc" else utc.astimezone(zone)
        return moment.replace(tzinfo=None)

    customers = max(200, int(p.per_day * 2))
    rows: list[tuple] = []
    shop = Shop(s, stored(utc1), rows, customers, incidents=incidents)
    day_noise = shop.day_noise
    moment, tid = utc0, 1
    while moment < utc1:
        local = moment.astimezone(zone).replace(tzinfo=None)
        date = local.replace(hour=0, minute=0, second=0)
        if date not in day_noise:
            day_noise[date] = float(rng.gamma(k_day, 1 / k_day))
        rate = p.per_day * p.weekday[local.weekday()] * p.hours[local.hour] * _level(s, local)
        factor = next((i.factor for i in incidents if i.start <= local < i.end), None)
        mean = rate * factor if factor is not None else rate * day_noise[date] * rng.gamma(k_hour, 1 / k_hour)
        n = int(rng.poisson(mean))
        at = stored(moment)
        bucket_h, bucket_d = at, at.replace(hour=0)
        for key, table in ((bucket_h, shop.hour_truth), (bucket_d, shop.day_truth)):
            t = table.setdefault(key, [0.0, 0.0, 0.0])
            t[0] += rate
            t[1] += rate if factor is None else rate * factor
        if n:
            seconds = np.sort(rng.integers(0, 3600, size=n))
            failed = rng.random(n) < p.fail_rate
            amounts = np.round(rng.lognormal(math.log(p.amount), 0.6, size=n), 2)
            who = rng.integers(1, customers + 1, size=n)
            for sec, f, a, c in zip(seconds, failed, amounts, who, strict=True):
                rows.append((tid, int(c), at + timedelta(seconds=int(sec)), "FAILED" if f else "SUCCESS", float(a)))
                tid += 1
            ok = int(n - failed.sum())
            shop.hour_truth[bucket_h][2] += ok
            shop.day_truth[bucket_d][2] += ok
        moment += HOUR
    # Expectations of successful sales (what `scan sales` counts).
    for table in (shop.hour_truth, shop.day_truth):
        for t in table.values():
            t[0] *= 1 - p.fail_rate
            t[1] *= 1 - p.fail_rate
    if s.shift:
        shop.shift_day = stored((s.start + s.shift[0] * DAY).replace(tzinfo=zone).astimezone(timezone.utc))
    if s.decline:
        first, span, _ = s.decline
        shop.decline_span = (s.start + first * DAY, s.start + (first + span + 7) * DAY)
    if s.christmas:
        year = s.start.year
        shop.lull_span = (datetime(year, 12, 24), datetime(year + 1, 1, 13))
    if s.bad_rows:
        spoil(rows, rng, s.bad_rows, tid)
    return shop


BAD_DATES = ("not a date", "31/12/2024 10:00", "", "2025-02-30 10:00:00", "1700000000")
BAD_AMOUNTS = ("abc", "1e400", "")


def spoil(rows: list[tuple], rng: np.random.Generator, n: int, tid: int) -> None:
    """Extra rows a careless export leaves: garbage dates, and sales with unreadable amounts."""
    for i in range(n):
        when = rows[int(rng.integers(0, len(rows)))][2]
        if i % 2:
            rows.append((tid + i, 1, BAD_DATES[i % len(BAD_DATES)], "SUCCESS", 10.0))
        else:
            rows.append((tid + i, 1, when, "SUCCESS", BAD_AMOUNTS[i % len(BAD_AMOUNTS)]))
