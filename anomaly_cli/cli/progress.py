"""The status line of a long scan on a terminal: which check runs, how many findings so far.

`run_scan` stays print-free; the CLI hands it a `StatusLine` as its progress callback. The line
lives on stderr, only when stderr is a terminal and --quiet was not given (the caller decides),
is transient (erased when done) and steps aside before each check's results are printed, so a
table on the same terminal is never garbled.
"""

from __future__ import annotations

import sys
from typing import Any


class StatusLine:
    def __init__(self, *, color: bool) -> None:
        from rich.console import Console

        self.console = Console(file=sys.stderr, force_terminal=True, no_color=not color, highlight=False)
        self.status: Any = None
        self.check = ""

    def __call__(self, event: str, **info: Any) -> None:
        if event == "connect":
            self.show(f"connecting to {info['database']}")
        elif event == "check":
            self.check = f"{info['name']} ({info['index']}/{info['total']})"
            self.show(f"{self.check}: running")
        elif event == "findings":
            count = info["count"]
            self.show(f"{self.check}: running, {count} finding{'s' if count != 1 else ''} so far")
        elif event == "check_done":
            self.stop()

    def show(self, text: str) -> None:
        if self.status is None:
            self.status = self.console.status(text)
            self.status.start()
        else:
            self.status.update(text)

    def stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None
