"""Planted behavioural anomalies for the demo shop: customers acting unlike themselves.

None of them breaks a rule the other checks know: every item sells at its catalog price, every
payment succeeds, no burst comes near 6 in a minute, and days only gain volume. All three sit in
the last three days before the data's end, so `scan behaviour --since <end - 3 days>` sees them
with the rest of the data as history.

- account-takeover: a customer who buys one cheap item in the evening every day or three
  suddenly buys expensive products at night, several times within the hour;
- slow-ramp: a new customer whose every purchase is a little larger than the one before, for
  four weeks (no single step is striking; the run is);
- dormant-wakes: a customer who bought a few cheap items in the first two weeks, then nothing
  for a month, then one basket of six products they never bought.
"""

from __future__ import annotations

import itertools
import math
import random
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from anomaly_cli.demo_data import _Builder

NEW_CUSTOMERS = ((41, "Farhan Qureshi", "Mumbai", "Maharashtra", "400"),
                 (42, "Lakshmi Iyengar", "Chennai", "Tamil Nadu", "600"),
                 (43, "Sanjay Deshmukh", "Pune", "Maharashtra", "411"))
RAMP, DORMANT, VICTIM = 41, 42, 43
EXPENSIVE = ("prod1001", "prod1002", "prod1009", "prod1006")  # laptop, smartphone, tablet, monitor
CHEAP = ("prod1005", "prod1012", "prod1004", "prod1008")  # mouse, USB cable, keyboard, webcam
EVENING = ("prod1005", "prod1004", "prod1008", "prod1003")  # mouse, keyboard, webcam, headphones
WAKING_BASKET = ("prod1001", "prod1009", "prod1002", "prod1006", "prod1007", "prod1010")


def _iso(dt: datetime) -> str:
    return dt.isoformat(timespec="seconds")


def _customers(rng: random.Random) -> list[dict[str, Any]]:
    rows = []
    for cid, name, city, state, prefix in NEW_CUSTOMERS:
        # Mobiles start with 5: never one of the seed customers' (which start with 6-9).
        mobile = "5" + "".join(rng.choice("0123456789") for _ in range(9))
        rows.append({"customer_id": cid, "customer_name": name, "mobile_number": mobile,
                     "email": name.lower().replace(" ", ".") + "@example.com", "city": city, "state": state,
                     "pincode": f"{prefix}{rng.randint(1, 99):03d}", "country": "India"})
    return rows


def _baskets(b: _Builder) -> list[tuple[Decimal, list[tuple[str, int]]]]:
    """Every basket of 1-3 distinct normally sold products, 1-3 of each, with its total, by total."""
    normal = [p for p, _ in b.normal]
    out = []
    for k in (1, 2, 3):
        for chosen in itertools.combinations(normal, k):
            for qtys in itertools.product((1, 2, 3), repeat=k):
                total = sum((p["product_price"] * q for p, q in zip(chosen, qtys)), Decimal(0))
                out.append((total, [(p["product_id"], q) for p, q in zip(chosen, qtys)]))
    out.sort(key=lambda t: (t[0], [x for x in t[1]]))
    return out


def plant_behaviour(b: _Builder, rng: random.Random, start: datetime, end: datetime,
                    pending: list[Any]) -> list[dict[str, Any]]:
    """Add the three plants to the builder and their ground truth to `pending`; returns the new customers."""
    from anomaly_cli.demo_data import _Item

    for cid, *_ in NEW_CUSTOMERS:
        b.timeline[cid] = []
    # The sales plants' days (the zero day and the two partial outages: Tuesday to Thursday of
    # the last full week before the end's) must keep exactly the volume they were given.
    w1 = end.date() - timedelta(days=end.weekday() + 7)
    blocked = {w1 + timedelta(days=i) for i in (1, 2, 3)}

    def item(pid: str, qty: int = 1) -> _Item:
        product = b.products[pid]
        return _Item(product, product["product_price"], qty)

    def truth(kind: str, cid: int, txns: list[Any], **extra: Any) -> None:
        detail = {"customer_id": cid, "start": _iso(txns[0].dt), "end": _iso(txns[-1].dt), "count": len(txns),
                  "total": str(sum(sum((it.price * it.qty for it in t.items), Decimal(0)) for t in txns)), **extra}
        pending.append(("behaviour", kind, True, lambda: detail))

    # account takeover: an evening regular; then, 02:00-03:00 on the day 36 h before the end,
    # 7 purchases 4-9 minutes apart
    night = datetime.combine((end - timedelta(hours=36)).date(), time(2, rng.randrange(10, 30), rng.randrange(60)))
    day = start.date() + timedelta(days=1)
    while day < night.date():
        when = datetime.combine(day, time(rng.randint(18, 20), rng.randrange(60), rng.randrange(60)))
        lines = [item(rng.choice(EVENING))]
        if day not in blocked:
            b.add(when, VICTIM, "SUCCESS", lines)
        day += timedelta(days=rng.randint(1, 3))
    times = [night]
    for _ in range(6):
        times.append(times[-1] + timedelta(seconds=rng.randint(240, 540)))
    takeover = [b.add(t, VICTIM, "SUCCESS", [item(rng.choice(EXPENSIVE), rng.choice((1, 2)))]) for t in times]
    truth("account-takeover", VICTIM, takeover)

    # slow ramp: from 26 days before the end, one evening purchase a day, each basket
    # the smallest one above both the previous total and a target growing 17 % a step
    baskets = _baskets(b)
    moment = datetime.combine((end - timedelta(days=26)).date(), time(19, rng.randrange(60), rng.randrange(60)))
    target, last, ramp = 450.0, Decimal(0), []
    while moment < end - timedelta(hours=2):
        if moment.date() in blocked:
            moment += timedelta(days=1)
            continue
        total, lines = next(x for x in baskets if x[0] > last and float(x[0]) >= target)
        ramp.append(b.add(moment, RAMP, "SUCCESS", [item(pid, q) for pid, q in lines]))
        last, target = total, target * 1.17
        moment = datetime.combine(moment.date() + timedelta(days=1),
                                  time(rng.randint(18, 20), rng.randrange(60), rng.randrange(60)))
    truth("slow-ramp", RAMP, ramp, steps=len(ramp))

    # dormant account: a few cheap weekday purchases in the first two weeks, then silence,
    # then six products never bought, 30 hours before the end
    early = []
    for day in range(1, 15):
        when = datetime.combine(start.date() + timedelta(days=day), time(rng.randint(12, 18), rng.randrange(60)))
        if when.weekday() < 5 and rng.random() < 0.6:
            early.append(b.add(when, DORMANT, "SUCCESS", [item(rng.choice(CHEAP))]))
    wake = datetime.combine((end - timedelta(hours=30)).date(), time(15, rng.randrange(60), rng.randrange(60)))
    if wake > end - timedelta(hours=1):
        wake -= timedelta(days=1)
    waking = [b.add(wake, DORMANT, "SUCCESS", [item(pid) for pid in WAKING_BASKET])]
    quiet = (wake - early[-1].dt) if early else timedelta(0)
    truth("dormant-wakes", DORMANT, waking, silent_days=math.floor(quiet.total_seconds() / 86400),
          earlier_purchases=len(early))
    return _customers(rng)
