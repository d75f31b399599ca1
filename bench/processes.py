"""Child processes for the end-to-end runs: a clean environment, and their own peak memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bench import generate
from bench.report import TINY_ROWS

LEAKY_PREFIXES = ("ANOMALY_", "MYSQL_")  # a developer's own settings must not steer the subprocess
LEAKY_NAMES = ("OPENAI_API_KEY", "AI_API_KEY", "OPENAI_BASE_URL")



PYCACHE: Path | None = None  # set by main(): where the child processes keep their bytecode


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(LEAKY_PREFIXES) and k not in LEAKY_NAMES}
    if PYCACHE is not None:
        # An installed package has its bytecode compiled; a checkout run with PYTHONDONTWRITEBYTECODE
        # would compile anomaly_cli on every start. Keep it beside the data, out of the source tree.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(PYCACHE)
    return env


# The child's peak memory must be its own: Linux starts a child's ru_maxrss at the high-water
# mark of the process that spawned it (exec keeps the larger), and this process grows while it
# runs checks in-process. So children are spawned by a small helper that never grows.
SPAWNER = r"""
import json, os, subprocess, sys, time
for line in sys.stdin:
    job = json.loads(line)
    with open(job["stderr"], "w") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(job["cmd"], cwd=job["cwd"], env=job["env"], stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    print(json.dumps([seconds, usage.ru_maxrss, os.waitstatus_to_exitcode(status),
                      usage.ru_utime + usage.ru_stime]), flush=True)
"""


class Spawner:
    """A lean helper process that runs commands and reports (seconds, max RSS KiB, exit code, CPU)."""

    def __init__(self) -> None:
        # -S: no site packages, so the helper stays at a few MB.
        self.proc = subprocess.Popen([sys.executable, "-S", "-c", SPAWNER], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def run(self, cmd: Sequence[str], cwd: Path, stderr: Path) -> tuple[float, int, int, float]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        job = {"cmd": list(cmd), "cwd": str(cwd), "env": clean_env(), "stderr": str(stderr)}
        self.proc.stdin.write(json.dumps(job) + "\n")
        self.proc.stdin.flush()
        seconds, maxrss, code, cpu = json.loads(self.proc.stdout.readline())
        return seconds, maxrss, code, cpu

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


SPAWN: Spawner | None = None  # started by main()


def timed_process(cmd: Sequence[str], cwd: Path) -> tuple[float, float, int, str, float]:
    """(wall seconds, peak RSS in MB, exit code, stderr, CPU seconds) of one child process."""
    assert SPAWN is not None, "main() starts the spawner"
    stderr = cwd / "stderr.txt"
    # wait4 in the helper: the child's own rusage (ru_maxrss is KiB on Linux).
    seconds, maxrss, code, cpu = SPAWN.run(cmd, cwd, stderr)
    return seconds, maxrss / 1024, code, stderr.read_text(encoding="utf-8", errors="replace"), cpu


def anomaly_command() -> list[str]:
    """The console script next to this interpreter, else `python -m anomaly_cli`."""
    script = Path(sys.executable).with_name("anomaly")
    return [str(script)] if script.exists() else [sys.executable, "-m", "anomaly_cli"]


def time_help(workdir: Path, runs: int = 5) -> list[dict[str, Any]]:
    out = []
    launchers = {"console script": anomaly_command(), "python -m": [sys.executable, "-m", "anomaly_cli"]}
    for label, launcher in launchers.items():
        for args in (["--help"], ["scan", "price", "--help"]):
            timings = [timed_process(launcher + args, workdir) for _ in range(runs)]
            out.append({"command": " ".join(["anomaly" if label == "console script" else "python -m anomaly_cli"]
                                            + args), "seconds": round(min(t[0] for t in timings), 3),
                        "cpu_seconds": round(min(t[4] for t in timings), 3)})
    return out


def time_tiny(workdir: Path, data_dir: Path, runs: int = 5) -> list[dict[str, Any]]:
    """`scan <check>` of a tiny shop (TINY_ROWS transactions), best of `runs`: start-up and imports."""
    made = generate.ensure("sqlite", TINY_ROWS, 7, data_dir=data_dir, server_url=None, create=True,
                           log=lambda _: None)
    assert made is not None
    out = []
    for check in ("price", "sales", "spam", "failed"):
        cmd = anomaly_command() + ["scan", check, "--db", made.url, "--format", "json",
                                   "--output", str(workdir / "tiny.json")]
        timings = [timed_process(cmd, workdir) for _ in range(runs)]
        failed = [t for t in timings if t[2] not in (0, 1)]
        out.append({"command": f"anomaly scan {check} (tiny database)", "seconds": round(min(t[0] for t in timings), 3),
                    "cpu_seconds": round(min(t[4] for t in timings), 3),
                    "error": " ".join(failed[0][3].split())[-200:] if failed else None})
    return out


def end_to_end(check: str, url: str, workdir: Path) -> tuple[float, float, float, int, int | None, str | None]:
    """`anomaly scan <check> --db URL --format json --output FILE` in a new process, as a user runs it."""
    output = workdir / f"{check}.json"
    output.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "anomaly_cli", "scan", check, "--db", url, "--format", "json",
           "--output", str(output)]
    seconds, peak_mb, code, stderr, cpu = timed_process(cmd, workdir)
    if code not in (0, 1):  # 1 only says that findings exist
        return seconds, cpu, peak_mb, code, None, " ".join(stderr.split())[-300:] or f"exit code {code}"
    document = json.loads(output.read_text(encoding="utf-8"))
    return seconds, cpu, peak_mb, code, sum(c["summary"]["findings"] for c in document["checks"]), None


def scans(check: str, url: str, startup_url: str | None, workdir: Path, repeat: int
          ) -> tuple[list[tuple[float, float, float, int, int | None, str | None]], list[tuple[float, float]]]:
    """`repeat` end-to-end runs (stopping at the first error) and, with `startup_url` (a tiny
    database of the same engine), the same scan of it as the start-up: (wall, CPU) of each.

    The start-up runs alternate with the e2e ones, so that both see the same machine (its speed
    drifts); at least 3 of them, as a single start-up is noisier than a long run."""
    runs: list[tuple[float, float, float, int, int | None, str | None]] = []
    startups: list[tuple[float, float]] = []
    for attempt in range(max(repeat, 3 if startup_url else 1)):
        if attempt < repeat and not any(r[5] is not None for r in runs):
            runs.append(end_to_end(check, url, workdir))
        if startup_url is not None and not any(r[5] is not None for r in runs):
            seconds, cpu, _, _, _, error = end_to_end(check, startup_url, workdir)
            if error is None:
                startups.append((seconds, cpu))
    return runs, startups
