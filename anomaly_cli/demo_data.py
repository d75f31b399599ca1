"""Deterministic demo shop data (seed schema) with planted anomalies and decoys as ground truth."""

from __future__ import annotations

import argparse
import bisect
import math
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

CENT = Decimal("0.01")
WEEKDAY_MEAN, WEEKEND_MEAN = 120, 55
DAY_NOISE = 0.12  # day totals are resampled until within +-12 % so normal days never look like drops
NORMAL_FAIL_RATE = 0.045  # above 3 % because the per-hour cap below suppresses about a third
MIN_GAP = timedelta(minutes=10)  # no customer ever has two normal transactions closer than this
DATE_FORMAT = "%Y-%m-%d %H:%M:%S"
# Relative transactions per hour: quiet nights, a lunch peak 11-14 and an evening peak 18-21.
HOUR_WEIGHTS = (0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.6, 1.5, 3, 4.5, 6, 8,
                9, 8.5, 7.5, 6.5, 6, 6.5, 8, 9, 8.5, 6, 3.5, 1.5)

# (product_id, name, catalog price, weight in normal traffic; 0 = never sold normally)
PRODUCTS = (
    ("prod1001", "Laptop", "50000.00", 2), ("prod1002", "Smartphone", "20000.00", 4),
    ("prod1003", "Headphones", "2000.00", 8), ("prod1004", "Keyboard", "1000.00", 8),
    ("prod1005", "Mouse", "500.00", 12), ("prod1006", "Monitor", "12000.00", 4),
    ("prod1007", "Printer", "8000.00", 3), ("prod1008", "Webcam", "1200.00", 6),
    ("prod1009", "Tablet", "25000.00", 3), ("prod1010", "Smartwatch", "6000.00", 5),
    ("prod1011", "External Hard Drive", "4500.00", 5), ("prod1012", "USB Cable", "250.00", 14),
    ("prod1013", "Bluetooth Speaker", "3000.00", 6),
    ("prod1014", "E-Gift Card", "10.00", 0),  # only card testers buy it
    ("prod1015", "Free Sticker", "0.00", 0),  # a dirty catalog row: non-positive price
)
CUSTOMER_NAMES = (
    "Alice Johnson", "Bob Smith", "Charlie Brown", "David Williams", "Eva Green", "Frank Miller",
    "Grace Lee", "Hannah Davis", "Ian Clark", "Julia Roberts", "Kevin Turner", "Laura White",
    "Michael Scott", "Nina Patel", "Oscar Reed", "Paula King", "Quentin Fox", "Rachel Stone",
    "Aarav Sharma", "Priya Iyer", "Rohan Mehta", "Ananya Rao", "Vikram Singh", "Sneha Reddy",
    "Arjun Nair", "Kavya Menon", "Rahul Gupta", "Diya Joshi", "Karan Malhotra", "Isha Kapoor",
    "Aditya Kumar", "Meera Pillai", "Siddharth Bose", "Neha Verma", "Aman Chawla", "Pooja Desai",
    "Varun Khanna", "Riya Banerjee", "Nikhil Jain", "Tanvi Kulkarni",
)
CITIES = (("Mumbai", "Maharashtra", "400"), ("Delhi", "Delhi", "110"), ("Bengaluru", "Karnataka", "560"),
          ("Chennai", "Tamil Nadu", "600"), ("Hyderabad", "Telangana", "500"), ("Kolkata", "West Bengal", "700"),
          ("Pune", "Maharashtra", "411"), ("Ahmedabad", "Gujarat", "380"), ("Jaipur", "Rajasthan", "302"),
          ("Lucknow", "Uttar Pradesh", "226"), ("Kochi", "Kerala", "682"), ("Chandigarh", "Chandigarh", "160"))
# Fixed actors of the spam and failed plants (seed customers).
EVA, IAN, JULIA, KEVIN, QUENTIN, RACHEL = 5, 9, 10, 11, 17, 18

@dataclass(frozen=True)
class Planted:
    """One planted anomaly or decoy: the ground truth the checks are tested against."""

    check: str  # 'price' | 'sales' | 'spam' | 'failed' | 'behaviour'
    kind: str  # short slug, unique within the list
    anomaly: bool  # True = must be reported; False = decoy that must NOT be reported
    detail: dict[str, Any]  # JSON-serialisable identifying info


@dataclass(frozen=True)
class DemoData:
    customers: list[dict[str, Any]]
    products: list[dict[str, Any]]
    transactions: list[dict[str, Any]]
    transaction_items: list[dict[str, Any]]
    planted: list[Planted]
    start: datetime
    end: datetime


@dataclass
class _Item:
    product: dict[str, Any]
    price: Decimal | None
    qty: int
    id: int = 0


@dataclass
class _Txn:
    dt: datetime
    customer_id: int
    status: str
    items: list[_Item]
    seq: int  # creation order: breaks ties between transactions in the same second
    id: int = 0


def _poisson(rng: random.Random, lam: float) -> int:
    """Knuth's sampler; exp(-lam) stays far from underflow at the means used here."""
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k += 1
        p *= rng.random()
    return k


class _Builder:
    """Accumulates transactions and keeps every customer's timeline to enforce MIN_GAP."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.products = {pid: {"product_id": pid, "product_name": name, "product_price": Decimal(price)}
                         for pid, name, price, _ in PRODUCTS}
        self.normal = [(self.products[pid], w) for pid, _, _, w in PRODUCTS if w > 0]
        self.txns: list[_Txn] = []
        self.timeline: dict[int, list[datetime]] = {cid: [] for cid in range(1, len(CUSTOMER_NAMES) + 1)}

    def customers(self) -> list[dict[str, Any]]:
        rows, mobiles = [], set()
        for cid, name in enumerate(CUSTOMER_NAMES, 1):
            mobile = ""
            while not mobile or mobile in mobiles:
                mobile = self.rng.choice("6789") + "".join(self.rng.choice("0123456789") for _ in range(9))
            mobiles.add(mobile)
            city, state, prefix = self.rng.choice(CITIES)
            rows.append({"customer_id": cid, "customer_name": name, "mobile_number": mobile,
                         "email": name.lower().replace(" ", ".") + "@example.com", "city": city,
                         "state": state, "pincode": f"{prefix}{self.rng.randint(1, 99):03d}", "country": "India"})
        return rows

    def add(self, dt: datetime, cid: int, status: str, items: list[_Item]) -> _Txn:
        txn = _Txn(dt, cid, status, items, len(self.txns))
        self.txns.append(txn)
        bisect.insort(self.timeline[cid], dt)
        return txn

    def free(self, cid: int, dt: datetime) -> bool:
        times = self.timeline[cid]
        i = bisect.bisect_left(times, dt)
        return all(abs(times[j] - dt) >= MIN_GAP for j in (i - 1, i) if 0 <= j < len(times))

    def pick_customer(self, dt: datetime) -> int | None:
        """A random customer with nothing within MIN_GAP of dt (None if, implausibly, all are busy)."""
        for _ in range(20):
            cid = self.rng.randint(1, len(CUSTOMER_NAMES))
            if self.free(cid, dt):
                return cid
        busy_free = [cid for cid in self.timeline if self.free(cid, dt)]
        return self.rng.choice(busy_free) if busy_free else None

    def price(self, catalog: Decimal) -> Decimal:
        """~90 % at catalog, ~8 % at a 5-20 % discount, ~2 % at a 1-4 % markup (all inside 0.75-1.05)."""
        r = self.rng.random()
        if r < 0.90:
            return catalog
        bp = -self.rng.randint(500, 2000) if r < 0.98 else self.rng.randint(100, 400)
        return (catalog * (10000 + bp) / 10000).quantize(CENT, ROUND_HALF_UP)

    def items(self, count: int | None = None, avoid: str = "") -> list[_Item]:
        n = count or self.rng.choices((1, 2, 3), weights=(60, 30, 10))[0]
        chosen: list[dict[str, Any]] = []
        while len(chosen) < n:
            product = self.rng.choices([p for p, _ in self.normal], weights=[w for _, w in self.normal])[0]
            if product not in chosen and product["product_id"] != avoid:
                chosen.append(product)
        return [_Item(p, self.price(p["product_price"]), self.rng.choices((1, 2, 3), weights=(80, 15, 5))[0])
                for p in chosen]

    def day_count(self, mean: float) -> int:
        while mean > 0:
            n = _poisson(self.rng, mean)
            if abs(n - mean) <= DAY_NOISE * mean:
                return n
        return 0

    def normal_day(self, day: date, factor: float, hole: tuple[int, int] | None, end: datetime) -> None:
        """One day of normal traffic; `hole` is an hour range left to a plant, `factor` scales volume."""
        mean = (WEEKDAY_MEAN if day.weekday() < 5 else WEEKEND_MEAN) * factor
        times = []
        for _ in range(self.day_count(mean)):
            hour = self.rng.choices(range(24), weights=HOUR_WEIGHTS)[0]
            times.append(datetime.combine(day, time(hour, self.rng.randrange(60), self.rng.randrange(60))))
        times = sorted(t for t in times if t <= end and not (hole and hole[0] <= t.hour < hole[1]))
        per_hour, failed_hours = Counter(t.hour for t in times), set()
        for t in times:
            cid = self.pick_customer(t)
            if cid is None:
                continue
            # At most one normal failure per hour and none in thin hours, so that chance alone
            # never produces an hour with a striking failure rate.
            fail = per_hour[t.hour] >= 5 and t.hour not in failed_hours and self.rng.random() < NORMAL_FAIL_RATE
            if fail:
                failed_hours.add(t.hour)
            self.add(t, cid, "FAILED" if fail else "SUCCESS", self.items())

    def burst(self, first: datetime, offsets: list[int], cid: int, failed: tuple[int, ...] = (),
              gift_card: bool = False) -> list[_Txn]:
        card = self.products["prod1014"]
        return [self.add(first + timedelta(seconds=o), cid, "FAILED" if i in failed else "SUCCESS",
                         [_Item(card, card["product_price"], 1)] if gift_card else self.items(1))
                for i, o in enumerate(offsets)]


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def _spam(txns: list[_Txn]) -> dict[str, Any]:
    return {"customer_id": txns[0].customer_id, "start": _iso(txns[0].dt), "end": _iso(txns[-1].dt),
            "count": len(txns), "failed": sum(t.status == "FAILED" for t in txns)}


def generate(end: datetime, *, weeks: int = 6, seed: int = 7) -> DemoData:
    """`weeks` whole weeks of days ending with the (partial) day of `end`; plants sit in the two
    full Monday-Sunday weeks before the week of `end`, which needs weeks >= 6 for 3 weeks of history."""
    if end.tzinfo is not None:
        raise ValueError("end must be a naive datetime")
    if weeks < 6:
        raise ValueError("weeks must be at least 6 so every plant has 3 weeks of history")
    end = end.replace(microsecond=0)
    first_day = end.date() - timedelta(days=7 * weeks - 1)
    start = datetime.combine(first_day, time())
    b = _Builder(random.Random(seed))
    customers = b.customers()
    monday = end.date() - timedelta(days=end.weekday())
    w2, w1 = monday - timedelta(days=14), monday - timedelta(days=7)  # 2nd-to-last and last full week

    def at(day: date, h: int, m: int = 0, s: int = 0) -> datetime:
        return datetime.combine(day, time(h, m, s))

    # One day per concern so plants never interfere; the sales drops own their days alone.
    outage_day, failing_day, spam_day, card_day, night_day, price_decoy_day = (w2 + timedelta(i) for i in range(6))
    discount_day, zero_day, p65_day, p55_day, markup_day = (w1 + timedelta(i) for i in range(5))
    quiet_sunday = w1 + timedelta(6)
    pending: list[tuple[str, str, bool, Callable[[], dict[str, Any]]]] = []

    # price: one odd item inside an otherwise normal SUCCESS transaction at a daytime hour
    price_plants = [  # (kind, anomaly, severity, day, hour, product_id, sold price)
        ("discount-high-30", True, "high", discount_day, 10, "prod1006", "8400.00"),
        ("discount-high-45", True, "high", discount_day, 11, "prod1002", "11000.00"),
        ("discount-critical-60", True, "critical", discount_day, 12, "prod1007", "3200.00"),
        ("discount-critical-86", True, "critical", discount_day, 13, "prod1005", "68.00"),
        ("discount-critical-99", True, "critical", discount_day, 17, "prod1001", "500.00"),
        ("discount-past-0.75", True, "high", discount_day, 19, "prod1004", "749.99"),
        ("markup-low-7", True, "low", markup_day, 10, "prod1008", "1284.00"),
        ("markup-medium-15", True, "medium", markup_day, 12, "prod1010", "6900.00"),
        ("markup-high-25", True, "high", markup_day, 15, "prod1003", "2500.00"),
        ("markup-critical-60", True, "critical", markup_day, 19, "prod1013", "4800.00"),
        ("boundary-0.75", False, None, price_decoy_day, 11, "prod1004", "750.00"),
        ("boundary-1.05", False, None, price_decoy_day, 13, "prod1004", "1050.00"),
        ("null-sold-price", False, None, price_decoy_day, 16, "prod1012", None),
        ("nonpositive-catalog", False, None, price_decoy_day, 18, "prod1015", "0.00"),
    ]
    for kind, anomaly, severity, day, hour, pid, sold in price_plants:
        dt = at(day, hour, b.rng.randrange(60), b.rng.randrange(60))
        item = _Item(b.products[pid], None if sold is None else Decimal(sold), 1)
        txn = b.add(dt, b.pick_customer(dt) or 1, "SUCCESS", [item] + b.items(1, avoid=pid))

        def price_detail(txn: _Txn = txn, item: _Item = item, severity: str | None = severity) -> dict[str, Any]:
            return {"transaction_id": txn.id, "item_id": item.id, "product_id": item.product["product_id"],
                    "catalog_price": str(item.product["product_price"]),
                    "sold_price": None if item.price is None else str(item.price), "severity": severity}
        pending.append(("price", kind, anomaly, price_detail))

    # spam: bursts by one customer; the decoys stay below any sensible burst rule
    spam_plants = [
        ("burst-8-in-40s", True, b.burst(at(spam_day, 11, 23, 8), [0, 5, 11, 16, 22, 28, 34, 40], QUENTIN)),
        # 3 in minute :41 and 4 in minute :42, so no single clock minute holds the burst
        ("straddle-burst", True, b.burst(at(spam_day, 19, 41, 40), [0, 7, 14, 21, 28, 34, 40], RACHEL)),
        ("card-testing", True, b.burst(at(card_day, 22, 16), list(range(0, 89, 8)), IAN,
                                       failed=(0, 1, 2, 3, 5, 6, 7, 8, 10, 11), gift_card=True)),
        ("decoy-5-in-30s", False, b.burst(at(spam_day, 13, 37, 15), [0, 7, 15, 22, 30], JULIA)),
        ("decoy-6-in-5min", False, b.burst(at(spam_day, 16, 5), [0, 60, 120, 180, 240, 300], KEVIN)),
    ]
    for kind, anomaly, txns in spam_plants:
        pending.append(("spam", kind, anomaly, lambda txns=txns: _spam(txns)))
    crowd = []
    for i in range(6):  # six different customers in one minute: MIN_GAP keeps them distinct
        dt = at(spam_day, 20, 14, 10 * i)
        crowd.append(b.add(dt, b.pick_customer(dt) or 1, "SUCCESS", b.items()))
    pending.append(("spam", "decoy-6-customers-1-min", False, lambda: {
        **_spam(crowd), "customer_id": None, "customer_ids": [t.customer_id for t in crowd]}))

    # failed: a broad gateway outage 14:00-16:00 at normal volume; failing customers retry once
    lo, hi = at(outage_day, 14), at(outage_day, 16)
    base = b.day_count(WEEKDAY_MEAN * (HOUR_WEIGHTS[14] + HOUR_WEIGHTS[15]) / sum(HOUR_WEIGHTS))
    starts = sorted(lo + timedelta(seconds=b.rng.randrange(7200)) for _ in range(base))
    doomed = set(b.rng.sample(range(base), round(0.7 * base)))
    outage: list[_Txn] = []
    for i, dt in enumerate(starts):
        cid = b.pick_customer(dt)
        if cid is None:
            continue
        outage.append(b.add(dt, cid, "FAILED" if i in doomed else "SUCCESS", b.items()))
        retry = dt + timedelta(seconds=b.rng.randint(120, 360))
        if i in doomed and retry < hi:
            # two in three retries fail as well, keeping the window near 70 % failed
            status = "SUCCESS" if len(outage) % 3 == 0 else "FAILED"
            outage.append(b.add(retry, cid, status, [replace(it) for it in outage[-1].items]))
    pending.append(("failed", "gateway-outage", True, lambda: {
        "start": _iso(lo), "end": _iso(hi), "scope": "broad", "count": len(outage),
        "failed": sum(t.status == "FAILED" for t in outage),
        "customers": len({t.customer_id for t in outage if t.status == "FAILED"})}))

    # one customer retrying the same basket every 4-4.5 minutes for an hour: too slow for spam
    dt, basket = at(failing_day, 10, 0, 30 + b.rng.randrange(30)), b.items()
    for _ in range(14):
        b.add(dt, EVA, "FAILED", [replace(it) for it in basket])
        dt += timedelta(seconds=b.rng.randint(240, 270))
    pending.append(("failed", "customer-failing", True, lambda: {
        "start": _iso(at(failing_day, 10)), "end": _iso(at(failing_day, 11)), "scope": "concentrated",
        "customer_id": EVA, "count": 14, "failed": 14}))

    # a night hour holding exactly 2 transactions, 1 failed: 50 % of almost nothing
    for minute, status in ((12, "FAILED"), (41, "SUCCESS")):
        dt = at(night_day, 3, minute, b.rng.randrange(60))
        b.add(dt, b.pick_customer(dt) or 1, status, b.items())
    pending.append(("failed", "low-volume-night", False, lambda: {
        "start": _iso(at(night_day, 3)), "end": _iso(at(night_day, 4)), "scope": "broad", "count": 2, "failed": 1}))

    # normal traffic around the plants; sales drops are simply lower volume on their day
    factors = {zero_day: 0.0, p65_day: 0.35, p55_day: 0.45}
    holes = {outage_day: (14, 16), night_day: (3, 4)}
    for i in range(7 * weeks):
        day = first_day + timedelta(days=i)
        b.normal_day(day, factors.get(day, 1.0), holes.get(day), end)

    def day_detail(day: date, drop: float) -> Callable[[], dict[str, Any]]:
        return lambda: {"day": day.isoformat(), "weekday": day.strftime("%A"), "expected_drop": drop,
                        "count": sum(t.dt.date() == day for t in b.txns)}
    pending += [("sales", "zero-day", True, day_detail(zero_day, 1.0)),
                ("sales", "partial-outage-65", True, day_detail(p65_day, 0.65)),
                ("sales", "partial-outage-55", True, day_detail(p55_day, 0.55)),
                ("sales", "quiet-sunday", False, day_detail(quiet_sunday, 0.0))]
    # read_csv recovers DemoData.start/end from this entry, as the CSVs cannot hold them
    last = day_detail(end.date(), 0.0)
    pending.append(("sales", "incomplete-last-day", False,
                    lambda: {**last(), "cutoff": _iso(end), "data_start": _iso(start)}))

    # behaviour: customers acting unlike themselves, after the normal traffic and with their
    # own random stream, so that every other table row and plant above stays as it was
    from anomaly_cli.demo_behaviour import plant_behaviour

    customers += plant_behaviour(b, random.Random(seed * 1009 + 16), start, end, pending)

    # IDs follow chronological order; creation order breaks ties within a second
    txns = sorted(b.txns, key=lambda t: (t.dt, t.seq))
    item_rows, txn_rows = [], []
    for txn_id, txn in enumerate(txns, 1):
        txn.id = txn_id
        for item in txn.items:
            item.id = len(item_rows) + 1
            item_rows.append({"item_id": item.id, "transaction_id": txn_id,
                              "product_id": item.product["product_id"], "product_name": item.product["product_name"],
                              "product_price": item.price, "quantity": item.qty})
        total = sum(((it.price or Decimal(0)) * it.qty for it in txn.items), Decimal(0)).quantize(CENT)
        txn_rows.append({"transaction_id": txn_id, "customer_id": txn.customer_id, "transaction_date": txn.dt,
                         "status": txn.status, "total_amount": total})
    order = ("price", "sales", "spam", "failed", "behaviour")
    pending.sort(key=lambda p: order.index(p[0]))  # stable: keeps each check's own order
    planted = [Planted(check, kind, anomaly, detail()) for check, kind, anomaly, detail in pending]
    return DemoData(customers, [dict(p) for p in b.products.values()], txn_rows, item_rows, planted, start, end)


def main(argv: list[str] | None = None) -> None:
    from anomaly_cli.demo_files import write_csv

    parser = argparse.ArgumentParser(description="Write a deterministic demo shop data set as CSV files.")
    parser.add_argument("--end", type=datetime.fromisoformat, default=None,
                        help="naive ISO datetime the data ends at (default: now, floored to the minute)")
    parser.add_argument("--weeks", type=int, default=6, help="whole weeks of data (at least 6)")
    parser.add_argument("--seed", type=int, default=7, help="random seed")
    parser.add_argument("--out", type=Path, required=True, help="directory to write the CSV files to")
    args = parser.parse_args(argv)
    end = args.end or datetime.now().replace(second=0, microsecond=0)
    try:
        data = generate(end, weeks=args.weeks, seed=args.seed)
    except ValueError as exc:
        parser.error(str(exc))
    write_csv(data, args.out)
    print(f"{len(data.transactions)} transactions, {len(data.transaction_items)} items, "
          f"{len(data.planted)} planted ({data.start} .. {data.end}) written to {args.out}")


if __name__ == "__main__":
    main()


def __getattr__(name: str) -> Any:
    # The CSV files' reader and writer live in demo_files; `from anomaly_cli.demo_data import
    # read_csv` keeps working without importing it for every user of the generator.
    if name in ("read_csv", "write_csv"):
        from anomaly_cli import demo_files

        return getattr(demo_files, name)
    raise AttributeError(name)

