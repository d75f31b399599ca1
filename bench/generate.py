"""A large benchmark shop in the seed schema, generated in vectorised chunks and bulk-loaded fast.

The shape follows anomaly_cli/demo_data.py (weekday/weekend and hourly rhythm, ~3 % failed
payments, 1-3 items per transaction, ~0.05 % price anomalies, spam bursts and card testing, a
failure spike and a sales drop) but is drawn with numpy one day at a time, so 10M transactions
never sit in memory. The tables carry primary keys only: no foreign keys and no secondary
indexes, so that a benchmark "without indexes" is exactly that. A database is reused while its
bench_meta row matches (rows, seed, generator version).

    .venv/bin/python -m bench.generate --rows 1000000 --engine sqlite
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

VERSION = 1  # bump when the shape changes: cached databases are then rebuilt
DAYS = 180
CHUNK = 50_000  # transactions per insert batch (a day is one batch when it holds more)
DATA_DIR = Path(__file__).resolve().parent / "data"
SERVERS = {
    "mariadb": "mariadb+pymysql://root@127.0.0.1:3306/",
    "postgresql": "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
}
TABLES = ("customers", "products", "transactions", "transaction_items")

FAIL_RATE = 0.03
SPIKE_FAIL_RATE = 0.6  # a gateway outage 14:00-16:00 on one day
CARD_FAIL_RATE = 0.85
WEEKEND_FACTOR = 0.45
DROP_FACTOR = 0.35  # one weekday with a third of its sales (a partial outage)
PRICE_ANOMALY_RATE = 0.0005
NULL_PRICE_RATE = 0.0001
STICKER_RATE = 0.0001  # items of a catalog row priced 0.00 (dirty data the price check skips)
HOUR_WEIGHTS = (0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.6, 1.5, 3, 4.5, 6, 8,
                9, 8.5, 7.5, 6.5, 6, 6.5, 8, 9, 8.5, 6, 3.5, 1.5)
PRODUCT_KINDS = ("Laptop", "Smartphone", "Headphones", "Keyboard", "Mouse", "Monitor", "Printer", "Webcam",
                 "Tablet", "Smartwatch", "External Hard Drive", "USB Cable", "Bluetooth Speaker")
FIRST_NAMES = ("Aarav", "Priya", "Rohan", "Ananya", "Vikram", "Sneha", "Arjun", "Kavya", "Rahul", "Diya",
               "Alice", "Bob", "Charlie", "Eva", "Grace", "Ian", "Julia", "Kevin", "Nina", "Quentin")
LAST_NAMES = ("Sharma", "Iyer", "Mehta", "Rao", "Singh", "Reddy", "Nair", "Menon", "Gupta", "Joshi",
              "Johnson", "Smith", "Brown", "Green", "Lee", "Clark", "Roberts", "Turner", "Patel", "Fox")
CITIES = (("Mumbai", "Maharashtra", "400"), ("Delhi", "Delhi", "110"), ("Bengaluru", "Karnataka", "560"),
          ("Chennai", "Tamil Nadu", "600"), ("Hyderabad", "Telangana", "500"), ("Pune", "Maharashtra", "411"))
COLUMNS = {
    "customers": ("customer_id", "customer_name", "mobile_number", "email", "city", "state", "pincode", "country"),
    "products": ("product_id", "product_name", "product_price"),
    "transactions": ("transaction_id", "customer_id", "transaction_date", "status", "total_amount"),
    "transaction_items": ("item_id", "transaction_id", "product_id", "product_name", "product_price", "quantity"),
}


@dataclass(frozen=True)
class Burst:
    second: int  # of the day, of the first transaction
    customer: int
    gaps: tuple[int, ...]  # seconds between consecutive transactions
    card_testing: bool  # gift cards, mostly failed


@dataclass(frozen=True)
class Plan:
    """Everything decided up front; each day is then drawn from its own seeded generator."""

    rows: int
    seed: int
    start: datetime
    customers: int
    product_ids: np.ndarray
    product_names: np.ndarray
    catalog_cents: np.ndarray
    popularity: np.ndarray  # probability of each product in normal traffic
    day_counts: np.ndarray
    bursts: dict[int, list[Burst]]
    drop_day: int
    spike_day: int

    @property
    def gift_card(self) -> int:
        return 0  # product index 0

    @property
    def sticker(self) -> int:
        return len(self.product_ids) - 1


@dataclass
class Chunk:
    """Consecutive transactions (ids in date order) and their items, as numpy arrays."""

    txn_id: np.ndarray
    customer: np.ndarray
    when: np.ndarray  # seconds since plan.start
    failed: np.ndarray
    total_cents: np.ndarray
    item_id: np.ndarray
    item_txn: np.ndarray
    product: np.ndarray  # index into plan.product_*
    price_cents: np.ndarray  # -1 = NULL
    quantity: np.ndarray


def make_plan(rows: int, seed: int, end: date) -> Plan:
    """Days ending the day before `end`, their transaction counts (summing to `rows`), the plants."""
    rng = np.random.default_rng([seed, 0])
    start = datetime.combine(end - timedelta(days=DAYS), datetime.min.time())
    weekdays = np.array([(start + timedelta(days=d)).weekday() for d in range(DAYS)])
    weight = np.where(weekdays < 5, 1.0, WEEKEND_FACTOR) * rng.normal(1.0, 0.04, DAYS).clip(0.9, 1.1)
    drop_day = next(d for d in range(DAYS - 30, DAYS) if weekdays[d] == 2)  # a Wednesday
    spike_day = next(d for d in range(DAYS - 20, DAYS) if weekdays[d] == 1)  # a Tuesday
    weight[drop_day] *= DROP_FACTOR
    exact = weight / weight.sum() * rows
    counts = np.floor(exact).astype(np.int64)
    counts[np.argsort(counts - exact)[: rows - int(counts.sum())]] += 1  # largest remainders first

    customers = max(1000, rows // 50)
    products = 200
    kinds = np.array([PRODUCT_KINDS[i % len(PRODUCT_KINDS)] for i in range(products)])
    names = np.array(["E-Gift Card"] + [f"{k} {i + 1}" for i, k in enumerate(kinds)] + ["Free Sticker"])
    ids = np.array([f"prod{i:04d}" for i in range(products + 2)])
    rupees = np.exp(rng.normal(np.log(2000), 1.2, products)).clip(50, 90000).round()
    catalog = np.concatenate([[1000], (rupees * 100).astype(np.int64) - 1, [0]])  # x.99 prices
    weights = 1 / np.arange(1, products + 1) ** 0.8
    popularity = np.concatenate([[0.0], weights / weights.sum(), [0.0]])

    bursts: dict[int, list[Burst]] = {}
    for i in range(max(4, rows // 20_000)):
        day = int(rng.integers(0, DAYS))
        size = int(rng.integers(6, 13))
        burst = Burst(int(rng.integers(8 * 3600, 22 * 3600)), int(rng.integers(1, customers + 1)),
                      tuple(int(g) for g in rng.integers(2, 10, size - 1)), card_testing=i % 3 == 2)
        if sum(len(b.gaps) + 1 for b in bursts.get(day, [])) + size <= counts[day]:
            bursts.setdefault(day, []).append(burst)
    return Plan(rows, seed, start, customers, ids, names, catalog, popularity, counts, bursts, drop_day, spike_day)


def _day(plan: Plan, d: int) -> dict[str, np.ndarray]:
    """One day's transactions (sorted by time) and items, ids not yet assigned."""
    rng = np.random.default_rng([plan.seed, 1, d])
    n = int(plan.day_counts[d])
    bursts = plan.bursts.get(d, [])
    normal = n - sum(len(b.gaps) + 1 for b in bursts)
    hours = rng.choice(24, size=normal, p=np.array(HOUR_WEIGHTS) / sum(HOUR_WEIGHTS))
    second = [hours * 3600 + rng.integers(0, 3600, normal)]
    customer = [rng.integers(1, plan.customers + 1, normal)]
    card = [np.zeros(normal, dtype=bool)]
    for b in bursts:
        second.append(b.second + np.concatenate([[0], np.cumsum(b.gaps)]))
        customer.append(np.full(len(b.gaps) + 1, b.customer))
        card.append(np.full(len(b.gaps) + 1, b.card_testing))
    order = np.argsort(np.concatenate(second), kind="stable")
    sec = np.concatenate(second)[order].clip(0, 86399)
    cust = np.concatenate(customer)[order]
    is_card = np.concatenate(card)[order]

    fail_p = np.full(n, FAIL_RATE)
    if d == plan.spike_day:
        fail_p[(sec >= 14 * 3600) & (sec < 16 * 3600)] = SPIKE_FAIL_RATE
    fail_p[is_card] = CARD_FAIL_RATE
    failed = rng.random(n) < fail_p

    per_txn = np.where(is_card, 1, rng.choice((1, 2, 3), size=n, p=(0.6, 0.3, 0.1)))
    owner = np.repeat(np.arange(n), per_txn)
    m = len(owner)
    product = rng.choice(len(plan.product_ids), size=m, p=plan.popularity)
    product[rng.random(m) < STICKER_RATE] = plan.sticker
    carded = is_card[owner]
    product[carded] = plan.gift_card
    quantity = np.where(carded, 1, rng.choice((1, 2, 3), size=m, p=(0.8, 0.15, 0.05)))
    # ~90 % at catalog, 8 % at a 5-20 % discount, 2 % at a 1-4 % markup: all inside 0.75-1.05.
    r = rng.random(m)
    factor = np.ones(m)
    factor[r < 0.08] = 1 - rng.uniform(0.05, 0.20, int((r < 0.08).sum()))
    markup = (r >= 0.08) & (r < 0.10)
    factor[markup] = 1 + rng.uniform(0.01, 0.04, int(markup.sum()))
    odd = (rng.random(m) < PRICE_ANOMALY_RATE) & ~carded
    half = rng.random(m) < 0.5
    factor[odd & half] = rng.uniform(0.05, 0.70, int((odd & half).sum()))
    factor[odd & ~half] = rng.uniform(1.10, 1.60, int((odd & ~half).sum()))
    price = np.rint(plan.catalog_cents[product] * factor).astype(np.int64)
    price[rng.random(m) < NULL_PRICE_RATE] = -1
    total = np.bincount(owner, weights=np.where(price < 0, 0, price * quantity), minlength=n)
    return {"when": d * 86400 + sec, "customer": cust, "failed": failed, "total_cents": np.rint(total).astype(np.int64),
            "owner": owner, "product": product, "price_cents": price, "quantity": quantity}


def chunks(plan: Plan) -> Iterator[Chunk]:
    """The whole data set, day by day, in batches of about CHUNK transactions."""
    next_txn = next_item = 1
    pending: list[dict[str, np.ndarray]] = []

    def flush() -> Chunk:
        nonlocal next_txn, next_item
        cat = {k: np.concatenate([p[k] for p in pending]) for k in pending[0] if k != "owner"}
        offsets = np.cumsum([0] + [len(p["when"]) for p in pending[:-1]])
        owner = np.concatenate([p["owner"] + o for p, o in zip(pending, offsets)])
        n, m = len(cat["when"]), len(owner)
        chunk = Chunk(np.arange(next_txn, next_txn + n), cat["customer"], cat["when"], cat["failed"],
                      cat["total_cents"], np.arange(next_item, next_item + m), owner + next_txn,
                      cat["product"], cat["price_cents"], cat["quantity"])
        next_txn, next_item = next_txn + n, next_item + m
        pending.clear()
        return chunk

    size = 0
    for d in range(DAYS):
        pending.append(_day(plan, d))
        size += len(pending[-1]["when"])
        if size >= CHUNK:
            yield flush()
            size = 0
    if pending:
        yield flush()


# --------------------------------------------------------------------------------------- rows

_CLOCK: list[str] = []


def _dates(plan: Plan, when: np.ndarray) -> list[str]:
    """'YYYY-MM-DD HH:MM:SS' for seconds since plan.start (a string per row, no datetime objects)."""
    if not _CLOCK:
        _CLOCK.extend(f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}" for s in range(86400))
    days = [f"{plan.start.date() + timedelta(days=d)} " for d in range(DAYS)]
    return [days[d] + _CLOCK[s] for d, s in zip((when // 86400).tolist(), (when % 86400).tolist())]


def _money(cents: np.ndarray) -> list[float | None]:
    values = (cents / 100).astype(object)  # c / 100 prints as exactly two decimals
    values[cents < 0] = None
    return values.tolist()


def transaction_rows(plan: Plan, c: Chunk) -> list[tuple[Any, ...]]:
    status = np.where(c.failed, "FAILED", "SUCCESS").tolist()
    return list(zip(c.txn_id.tolist(), c.customer.tolist(), _dates(plan, c.when), status, _money(c.total_cents)))


def item_rows(plan: Plan, c: Chunk) -> list[tuple[Any, ...]]:
    return list(zip(c.item_id.tolist(), c.item_txn.tolist(), plan.product_ids[c.product].tolist(),
                    plan.product_names[c.product].tolist(), _money(c.price_cents), c.quantity.tolist()))


def product_rows(plan: Plan) -> list[tuple[Any, ...]]:
    return list(zip(plan.product_ids.tolist(), plan.product_names.tolist(), _money(plan.catalog_cents)))


def customer_rows(plan: Plan) -> Iterator[list[tuple[Any, ...]]]:
    rng = np.random.default_rng([plan.seed, 2])
    for lo in range(1, plan.customers + 1, CHUNK):
        ids = np.arange(lo, min(lo + CHUNK, plan.customers + 1))
        first = rng.integers(0, len(FIRST_NAMES), len(ids))
        last = rng.integers(0, len(LAST_NAMES), len(ids))
        city = rng.integers(0, len(CITIES), len(ids))
        rows = []
        for i, f, la, c in zip(ids.tolist(), first.tolist(), last.tolist(), city.tolist()):
            name = f"{FIRST_NAMES[f]} {LAST_NAMES[la]}"
            town, state, prefix = CITIES[c]
            rows.append((i, name, f"9{i:09d}", f"{name.lower().replace(' ', '.')}.{i}@example.com",
                         town, state, f"{prefix}{i % 1000:03d}", "India"))
        yield rows


# --------------------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class Generated:
    url: str  # SQLAlchemy URL of the benchmark database
    reused: bool
    seconds: float
    transactions: int
    items: int


def prepare_data_dir(data_dir: Path) -> None:
    """The cache directory, git-ignored by a .gitignore of its own."""
    data_dir.mkdir(parents=True, exist_ok=True)
    ignore = data_dir / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# generated benchmark databases and bytecode\n*\n")


def database_name(rows: int, seed: int, suffix: str = "") -> str:
    """The server database's name; a suffix keeps engineers sharing one server apart."""
    if suffix and not re.fullmatch(r"[a-z0-9_]+", suffix):
        raise ValueError(f"database name suffix {suffix!r}: use lower-case letters, digits and _")
    return f"anomaly_bench_{rows}_s{seed}" + (f"_{suffix}" if suffix else "")


def dbapi_connect(url: str, *, streaming: bool = False) -> Any:
    """A plain driver connection (sqlite3, pymysql, psycopg) to a SQLAlchemy URL."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    backend = u.get_backend_name()
    if backend == "sqlite":
        return sqlite3.connect(f"file:{u.database}?mode=ro", uri=True) if streaming else sqlite3.connect(u.database)
    if backend in ("mysql", "mariadb"):
        import pymysql
        import pymysql.cursors

        return pymysql.connect(host=u.host or "127.0.0.1", port=u.port or 3306, user=u.username or "root",
                               password=u.password or "", database=u.database, connect_timeout=3,
                               cursorclass=pymysql.cursors.SSCursor if streaming else pymysql.cursors.Cursor)
    if backend == "duckdb":
        import duckdb

        return duckdb.connect(u.database, read_only=streaming)
    if backend == "postgresql":
        import psycopg

        return psycopg.connect(host=u.host or "127.0.0.1", port=u.port or 5432, user=u.username or "postgres",
                               password=u.password, dbname=u.database or "postgres", connect_timeout=3)
    raise ValueError(f"unsupported benchmark engine {backend!r}")


def server_problem(engine: str, server_url: str) -> str | None:
    """None when the server answers, else a short reason."""
    try:
        dbapi_connect(server_url).close()
        return None
    except Exception as exc:  # any failure: the engine is skipped, and the reason printed
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}"


def _ddl(dialect_name: str) -> list[str]:
    """CREATE TABLE of the seed schema's four tables: primary keys (and the unique mobile), no FKs."""
    from sqlalchemy.engine import URL
    from sqlalchemy.schema import CreateTable

    from anomaly_cli.config import default_schema
    from anomaly_cli.schema import metadata

    dialect = URL.create(dialect_name).get_dialect()()
    md = metadata(default_schema())
    return [str(CreateTable(md.tables[name], include_foreign_key_constraints=[]).compile(dialect=dialect))
            for name in TABLES]


def _insert(table: str, style: str) -> str:
    marks = ", ".join(style for _ in COLUMNS[table])
    return f"INSERT INTO {table} ({', '.join(COLUMNS[table])}) VALUES ({marks})"


def _meta(plan: Plan, items: int) -> dict[str, str]:
    return {"version": str(VERSION), "rows": str(plan.rows), "seed": str(plan.seed), "items": str(items),
            "start": plan.start.isoformat(), "end": (plan.start + timedelta(days=DAYS)).isoformat(),
            "generated_at": datetime.now().isoformat(timespec="seconds")}


def _read_meta(conn: Any) -> dict[str, str]:
    cur = conn.cursor()
    try:
        cur.execute("SELECT name, value FROM bench_meta")
        return dict(cur.fetchall())
    except Exception:  # no such table: not (completely) generated
        return {}
    finally:
        cur.close()


def _matches(meta: dict[str, str], rows: int, seed: int) -> bool:
    return meta.get("version") == str(VERSION) and meta.get("rows") == str(rows) and meta.get("seed") == str(seed)


def _load(conn: Any, plan: Plan, write: Callable[[Any, str, list[tuple[Any, ...]]], None],
          log: Callable[[str], None]) -> int:
    """Insert everything through `write(cursor, table, rows)`; commits per batch; returns item count."""
    cur = conn.cursor()
    write(cur, "products", product_rows(plan))
    for rows in customer_rows(plan):
        write(cur, "customers", rows)
    items = done = 0
    started = time.perf_counter()
    for chunk in chunks(plan):
        write(cur, "transactions", transaction_rows(plan, chunk))
        write(cur, "transaction_items", item_rows(plan, chunk))
        conn.commit()
        items += len(chunk.item_id)
        done += len(chunk.txn_id)
        if done // 1_000_000 != (done - len(chunk.txn_id)) // 1_000_000:
            log(f"  {done:,} transactions ({time.perf_counter() - started:.0f} s)")
    cur.close()
    return items


def _executemany(cur: Any, table: str, rows: list[tuple[Any, ...]], style: str) -> None:
    cur.executemany(_insert(table, style), rows)


def _copy(cur: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
    with cur.copy(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def _store_meta(conn: Any, meta: dict[str, str], style: str) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TABLE bench_meta (name VARCHAR(40) PRIMARY KEY, value VARCHAR(100))")
    cur.executemany(f"INSERT INTO bench_meta (name, value) VALUES ({style}, {style})", list(meta.items()))
    conn.commit()
    cur.close()


def ensure(engine: str, rows: int, seed: int = 7, *, data_dir: Path = DATA_DIR, server_url: str | None = None,
           regenerate: bool = False, create: bool = True, end: date | None = None,
           log: Callable[[str], None] = print, suffix: str = "") -> Generated | None:
    """The benchmark database for (engine, rows, seed): reused when it matches, else generated
    (or None when `create` is False). The data ends at the start of `end` (default today).
    `suffix` is appended to a server database's name."""
    end = end or date.today()
    if engine == "sqlite":
        return _ensure_sqlite(rows, seed, data_dir, regenerate, create, end, log)
    if engine == "duckdb":
        return _ensure_duckdb(rows, seed, data_dir, regenerate, create, end, log)
    if engine in ("mariadb", "postgresql"):
        return _ensure_server(engine, rows, seed, server_url or SERVERS[engine], regenerate, create, end, log,
                              suffix)
    raise ValueError(f"unknown engine {engine!r} (use sqlite, mariadb or postgresql)")


def _ensure_sqlite(rows: int, seed: int, data_dir: Path, regenerate: bool, create: bool, end: date,
                   log: Callable[[str], None]) -> Generated | None:
    prepare_data_dir(data_dir)
    path = data_dir / f"shop-{rows}-s{seed}.db"
    url = f"sqlite:///{path}"
    if path.exists() and not regenerate:
        conn = sqlite3.connect(path)
        meta = _read_meta(conn)
        conn.close()
        if _matches(meta, rows, seed):
            return Generated(url, True, 0.0, rows, int(meta["items"]))
    if not create:
        return None
    started = time.perf_counter()
    plan = make_plan(rows, seed, end)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    # A benchmark database, not the audited one: no journal, no fsync while loading.
    conn = sqlite3.connect(tmp, isolation_level=None)
    for pragma in ("journal_mode=OFF", "synchronous=OFF", "cache_size=-262144", "locking_mode=EXCLUSIVE"):
        conn.execute(f"PRAGMA {pragma}")
    for statement in _ddl("sqlite"):
        conn.execute(statement)
    conn.execute("BEGIN")
    # sqlite3 in autocommit mode: one transaction for the whole load, committed at the end.
    committing = _NoCommit(conn)
    items = _load(committing, plan, lambda cur, t, r: _executemany(cur, t, r, "?"), log)
    conn.execute("COMMIT")
    _store_meta(conn, _meta(plan, items), "?")
    conn.close()
    tmp.replace(path)
    return Generated(url, False, time.perf_counter() - started, rows, items)


def _ensure_duckdb(rows: int, seed: int, data_dir: Path, regenerate: bool, create: bool, end: date,
                   log: Callable[[str], None]) -> Generated | None:
    """The shop as a DuckDB file: the same generator, each chunk appended through COPY."""
    import csv
    import tempfile

    import duckdb

    prepare_data_dir(data_dir)
    path = data_dir / f"shop-{rows}-s{seed}.duckdb"
    url = f"duckdb:///{path}"
    if path.exists() and not regenerate:
        with duckdb.connect(str(path), read_only=True) as conn:
            meta = dict(conn.execute("SELECT name, value FROM bench_meta").fetchall()) \
                if conn.execute("SELECT count(*) FROM information_schema.tables WHERE table_name = 'bench_meta'"
                                ).fetchone()[0] else {}
        if _matches(meta, rows, seed):
            return Generated(url, True, 0.0, rows, int(meta["items"]))
    if not create:
        return None
    started = time.perf_counter()
    plan = make_plan(rows, seed, end)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    conn = duckdb.connect(str(tmp))
    for statement in _ddl("duckdb"):
        conn.execute(statement)

    # Each chunk through a CSV file and COPY: DuckDB's fastest path without pandas or pyarrow.
    spool = Path(tempfile.mkdtemp(prefix="anomaly-bench-")) / "chunk.csv"

    def append(_cur: Any, table: str, batch: list[tuple[Any, ...]]) -> None:
        with spool.open("w", newline="") as f:
            csv.writer(f).writerows(batch)
        conn.execute(f"COPY {table} ({', '.join(COLUMNS[table])}) FROM '{spool}' (HEADER false, NULL '')")

    items = _load(_NoCommit(conn), plan, append, log)  # type: ignore[arg-type]
    spool.unlink(missing_ok=True)
    spool.parent.rmdir()
    conn.execute("CREATE TABLE bench_meta (name VARCHAR, value VARCHAR)")
    conn.executemany("INSERT INTO bench_meta VALUES (?, ?)", list(_meta(plan, items).items()))
    conn.close()
    tmp.replace(path)
    return Generated(url, False, time.perf_counter() - started, rows, items)


class _NoCommit:
    """A sqlite3 connection whose per-batch commit is a no-op (the load is one big transaction)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def cursor(self) -> sqlite3.Cursor:
        return self._conn.cursor()

    def commit(self) -> None:
        pass


def _ensure_server(engine: str, rows: int, seed: int, server_url: str, regenerate: bool, create: bool,
                   end: date, log: Callable[[str], None], suffix: str = "") -> Generated | None:
    from sqlalchemy.engine import make_url

    name = database_name(rows, seed, suffix)
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    admin = dbapi_connect(server_url)
    try:
        if engine == "postgresql":
            admin.autocommit = True
            cur = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                admin.execute(f"CREATE DATABASE {name}")
        else:
            with admin.cursor() as cur:
                cur.execute(f"CREATE DATABASE IF NOT EXISTS {name}")
    finally:
        admin.close()

    conn = dbapi_connect(url)
    try:
        meta = _read_meta(conn)
        conn.rollback()
        if _matches(meta, rows, seed) and not regenerate:
            return Generated(url, True, 0.0, rows, int(meta["items"]))
        if not create:
            return None
        started = time.perf_counter()
        plan = make_plan(rows, seed, end)
        cur = conn.cursor()
        for table in ("bench_meta",) + tuple(reversed(TABLES)):
            cur.execute(f"DROP TABLE IF EXISTS {table}")
        for statement in _ddl("postgresql" if engine == "postgresql" else "mariadb"):
            cur.execute(statement)
        conn.commit()
        if engine == "postgresql":
            cur.execute("SET synchronous_commit = off")
            items = _load(conn, plan, _copy, log)
            _store_meta(conn, _meta(plan, items), "%s")
            conn.autocommit = True
            conn.execute("VACUUM ANALYZE")  # what autovacuum would have done on a settled database
        else:
            cur.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0")
            # pymysql turns executemany of one INSERT ... VALUES into multi-row INSERTs.
            items = _load(conn, plan, lambda c, t, r: _executemany(c, t, r, "%s"), log)
            _store_meta(conn, _meta(plan, items), "%s")
            cur.execute(f"ANALYZE TABLE {', '.join(TABLES)}")
            cur.fetchall()
        cur.close()
        return Generated(url, False, time.perf_counter() - started, rows, items)
    finally:
        conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Generate (or reuse) a benchmark shop database.")
    parser.add_argument("--rows", type=int, default=1_000_000, help="transactions (default 1,000,000)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engine", choices=("sqlite", "mariadb", "postgresql", "duckdb"), default="sqlite")
    parser.add_argument("--data-dir", type=Path, default=DATA_DIR, help="where SQLite databases are cached")
    parser.add_argument("--regenerate", action="store_true", help="rebuild even when a matching one exists")
    parser.add_argument("--db-suffix", default="", help="append _SUFFIX to a server database's name")
    args = parser.parse_args(argv)
    made = ensure(args.engine, args.rows, args.seed, data_dir=args.data_dir, regenerate=args.regenerate,
                  suffix=args.db_suffix)
    assert made is not None
    how = "reused" if made.reused else f"generated in {made.seconds:.1f} s"
    print(f"{made.url}: {made.transactions:,} transactions, {made.items:,} items ({how})")


if __name__ == "__main__":
    main()
