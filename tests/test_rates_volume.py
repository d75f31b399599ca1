"""rates' volume side: a gradual collapse of approvals, found with its start, against earlier days."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import pytest

from tests.conftest import load_counts, load_database, scan_json

FIRST = datetime(2025, 7, 7)  # a Monday


def pace(moment: datetime) -> float:
    """Approvals a minute: a quiet night, a busy day (a daily curve)."""
    hour = moment.hour + moment.minute / 60
    return 5 + 300 * max(0.0, math.sin(math.pi * (hour - 6) / 18)) if 6 <= hour <= 24 else 5.0


def minutes(days: int, fall: tuple[datetime, datetime, datetime] | None, seed: int = 1) -> list[dict]:
    """Per-minute counts by status for `days` days; `fall` = (start, bottom, end): approvals fall
    linearly from normal at start to 2 % at bottom, stay there, and come back at end."""
    rng = random.Random(seed)
    rows = []
    for m in range(days * 1440):
        ts = FIRST + timedelta(minutes=m)
        factor = 1.0
        if fall is not None:
            start, bottom, end = fall
            if start <= ts < bottom:
                factor = 1 - 0.98 * (ts - start) / (bottom - start)
            elif bottom <= ts < end:
                factor = 0.02
        approved = max(0, round(rng.gauss(pace(ts) * factor, math.sqrt(pace(ts)))))
        rows.append({"ts": ts, "status": "approved", "count": approved})
        denied = max(0, round(rng.gauss(pace(ts) * 0.05, 2)))
        if denied:
            rows.append({"ts": ts, "status": "denied", "count": denied})
    return rows


def load(url: str, rows: list[dict]) -> None:
    load_database(url, {})
    load_counts(url, rows)


def rates(cli, url: str, *args: str) -> dict:
    return scan_json(cli, "rates", url, *args)


@pytest.mark.engines
def test_a_gradual_collapse_is_found_from_its_start(engine_url: str, cli) -> None:
    fall = (datetime(2025, 7, 8, 12), datetime(2025, 7, 8, 16), datetime(2025, 7, 8, 19))
    load(engine_url, minutes(2, fall))
    check = rates(cli, engine_url, "--since", "2025-07-08T00:00", "--until", "2025-07-09T00:00")
    drops = [f for f in check["findings"] if f["status"] == "approved_drop"]
    assert len(drops) == 1, check["findings"]
    (drop,) = drops
    # Half the usual approvals by 14:02 (a linear fall from 12:00 to 16:00): reported from the
    # quarter hour where it was already below half, through the end of the collapse.
    assert datetime(2025, 7, 8, 13, 45) <= datetime.fromisoformat(drop["bucket_start"]) <= datetime(2025, 7, 8, 14, 15)
    assert datetime.fromisoformat(drop["bucket_end"]) == datetime(2025, 7, 8, 19, 0)
    assert drop["severity"] == "critical" and drop["score"] == 100
    assert drop["message"].startswith("Approved transactions fell to ")
    assert "at this time on earlier days" in drop["message"]


def test_an_ordinary_second_day_has_no_volume_finding(sqlite_url: str, cli) -> None:
    load(sqlite_url, minutes(2, None))
    check = rates(cli, sqlite_url, "--since", "2025-07-08T00:00", "--until", "2025-07-09T00:00")
    assert [f for f in check["findings"] if f["status"].startswith("approved_")] == []
    # A rise is only looked for when asked.
    check = rates(cli, sqlite_url, "--since", "2025-07-08T00:00", "--until", "2025-07-09T00:00",
                  "--direction", "both")
    assert [f for f in check["findings"] if f["status"].startswith("approved_")] == []
