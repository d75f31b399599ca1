"""The benchmark's PostgreSQL judgement: e2e less the start-up (a tiny scan), over the raw SQL."""

from __future__ import annotations

from bench.report import SERVER_TARGET, Row, evaluate, pool_startups, server_ok, table


def pg_row(check: str, seconds: float, raw: float, startup: float | None) -> Row:
    row = Row("postgresql", 1_000_000, check, "with", seconds=seconds, raw_seconds=raw, ratio=seconds / raw,
              startup_seconds=startup)
    if startup is not None:
        row.work_ratio = (seconds - startup) / raw
    return row


def pg_target(results: list[Row]) -> tuple[bool | None, str]:
    [target] = [t for t in evaluate(results, [], []) if t.name.startswith("PostgreSQL")]
    return target.passed, target.detail


def test_a_short_query_is_judged_without_its_start_up() -> None:
    # freshness: 0.22 s of SQL, 0.9 s of start-up: 5.1 x plain, 1.0 x once start-up is set aside.
    row = pg_row("freshness", 1.12, 0.22, 0.9)
    assert row.ratio > SERVER_TARGET and server_ok(row) is True
    passed, detail = pg_target([row])
    assert passed is True
    assert "(1.12 - 0.90) s vs 0.22 s = 1.00x (plain 5.09x)" in detail


def test_work_beyond_the_budget_still_fails() -> None:
    # 0.5 s of client work on top of 0.2 s of SQL: 3.5 x even with the start-up set aside.
    slow = pg_row("failed", 1.6, 0.2, 0.9)
    fine = pg_row("price", 4.2, 3.0, 0.9)
    assert server_ok(slow) is False and server_ok(fine) is True
    passed, detail = pg_target([slow, fine])
    assert passed is False
    assert detail.startswith("failed (with)") and "price" not in detail  # the failing ones are named


def test_no_start_up_no_verdict() -> None:
    # Without a measured start-up the plain ratio would judge the start-up: not judged, not passed.
    row = pg_row("sales", 1.0, 0.9, None)
    assert server_ok(row) is None
    assert pg_target([row])[0] is None


def test_behaviour_and_all_are_not_judged() -> None:
    rows = [pg_row("behaviour", 60.0, 10.0, 1.0), pg_row("all", 60.0, 10.0, 1.0)]
    assert [server_ok(r) for r in rows] == [None, None]
    assert pg_target(rows)[0] is None
    lines = table(rows).splitlines()[2:]
    assert all(line.split()[-1] == "-" for line in lines)  # no PASS/FAIL shown for them


def test_table_shows_the_start_up_and_the_judged_ratio() -> None:
    text = table([pg_row("freshness", 1.12, 0.22, 0.9)])
    header, _, line = text.splitlines()
    cells = dict(zip([h.strip() for h in header.split("  ") if h.strip()], line.split()))
    assert cells["start-up s"] == "0.90" and cells["work ratio"] == "1.00" and cells["raw ratio"] == "5.09"
    assert cells["target"] == "PASS"


def test_a_checks_start_up_is_its_best_tiny_scan_of_both_phases() -> None:
    # A slow set of tiny scans in one phase (a busy moment) must not make that phase look lean.
    without = pg_row("failed", 2.0, 1.0, 0.6)
    with_ = pg_row("failed", 2.6, 1.0, 1.4)
    other = pg_row("sales", 3.0, 2.5, 0.9)
    with_.startup_cpu_seconds, without.startup_cpu_seconds, other.startup_cpu_seconds = 0.5, 0.55, 0.6
    assert server_ok(with_) is True  # (2.6 - 1.4) / 1.0 = 1.2 with its own phase's start-up
    pool_startups([without, with_, other])
    assert (with_.startup_seconds, with_.startup_cpu_seconds) == (0.6, 0.5)
    assert (without.startup_seconds, without.startup_cpu_seconds) == (0.6, 0.5)
    assert with_.work_ratio == (2.6 - 0.6) / 1.0 and server_ok(with_) is False
    assert other.startup_seconds == 0.9  # another check's start-up is its own
