"""--format html (`anomaly report`): one self-contained page with a chart and a table per check.

Nothing is loaded from anywhere: the style is inlined, the charts are inline SVG (charts.py)
and there is no script, so the file opens offline, in a mail attachment, or printed.

The page streams like every other sink: each check's findings table is written as its findings
arrive, and what is only known later (the check's heading and counts, its chart, the KPI tiles
of the whole run) is written after it and put in place by CSS `order` in a flex column. Each
table shows the first MAX_ROWS findings of its check, then says how many more there are (the
complete list is in --format json or csv); the chart keeps up to figures.MAX_MARKS of them.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from decimal import Decimal
from html import escape
from typing import Any

from anomaly_cli.model import CheckInfo, CheckOutcome, Finding, RunInfo, ScanReport, Severity, Status
from anomaly_cli.render import BaseSink
from anomaly_cli.render.encode import printable, utc_stamp
from anomaly_cli.render.figures import MAX_MARKS, SEVERITY_COLOURS, caption, figures, mark

MAX_ROWS = 100  # findings shown per check

STYLE = """
*{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;
color:#222;background:#f6f7f9}main{display:flex;flex-direction:column;gap:16px;max-width:1100px;margin:0 auto;
padding:20px}header{order:-2}.kpis{order:-1;display:flex;flex-wrap:wrap;gap:10px}h1{margin:0 0 4px;font-size:24px}
dl.run{display:grid;grid-template-columns:max-content 1fr;gap:2px 12px;margin:0;color:#444}dt{font-weight:600}
dd{margin:0;word-break:break-all}.tile{background:#fff;border:1px solid #ddd;border-radius:8px;padding:10px 14px;
min-width:120px}.tile b{display:block;font-size:22px}.tile span{color:#555;font-size:12px}.tile .badge{color:#fff}
section.check{display:flex;flex-direction:column;gap:8px;background:#fff;border:1px solid #ddd;border-radius:8px;
padding:14px}.head{order:-2}.head h2{margin:0;font-size:18px}.head p{margin:2px 0;color:#555}figure{order:-1;
margin:0}figcaption{font-size:12px;color:#555}svg.chart{width:100%;height:auto;display:block;margin-bottom:6px}
table{border-collapse:collapse;width:100%;font-size:12px}th,td{border-bottom:1px solid #eee;padding:3px 6px;
text-align:left;vertical-align:top}th{background:#fafafa}td.r,th.r{text-align:right}tr.line td{color:#333;
border-bottom:1px solid #ddd;padding-bottom:6px}.badge{display:inline-block;border-radius:4px;padding:0 6px;
color:#fff;font-size:11px;font-weight:600;text-transform:uppercase}.status-ok{color:#2e7d32}
.status-not_evaluated{color:#6d4c41}.more{color:#555;font-style:italic}.note{color:#6d4c41}
@media print{body{background:#fff}main{padding:0}section.check{break-inside:auto;border:none;padding:0}
figure{break-inside:avoid}thead{display:table-header-group}tr{break-inside:avoid}}
"""


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, Decimal | float):
        return f"{value:,.2f}"
    return escape(printable(str(value)))


def badge(severity: Severity) -> str:
    return f'<span class="badge sev-{severity}" style="background:{SEVERITY_COLOURS[severity]}">{severity}</span>'


class Writer(BaseSink):
    for_people = True  # the plain-English lines are the text writer's (a model's, when configured)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._check: CheckInfo | None = None
        self._rows = 0
        self._marks: list[tuple[Any, ...]] = []

    def begin(self, run: RunInfo) -> None:
        w = self.stream.write
        since, until = run.window.since, run.window.until
        window = (f"{since:%Y-%m-%d %H:%M} to {until:%Y-%m-%d %H:%M}" if since and until
                  else f"from {since:%Y-%m-%d %H:%M}" if since else f"until {until:%Y-%m-%d %H:%M}" if until
                  else "all data")
        w('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
          '<meta name="viewport" content="width=device-width, initial-scale=1">'
          f"<title>anomaly report: {escape(run.database)}</title><style>{STYLE}</style></head><body><main>\n")
        w(f'<header><h1>anomaly report</h1><dl class="run"><dt>Database</dt><dd>{escape(run.database)}</dd>'
          f"<dt>Window</dt><dd>{escape(window)}</dd><dt>Run at</dt><dd>{utc_stamp(run.generated_at)}</dd>"
          f"<dt>Checks</dt><dd>{escape(', '.join(c.name for c in run.checks)) or 'none'}</dd>"
          f"<dt>Tool</dt><dd>{escape(run.tool)} {escape(run.version)}</dd></dl></header>\n")

    def check_begin(self, check: CheckInfo) -> None:
        self._check, self._rows, self._marks = check, 0, []
        name = escape(check.name)
        self.stream.write(f'<section class="check" id="check-{name}" data-check="{name}">\n')

    def finding(self, finding: Finding) -> None:
        check = self._check
        if check is None:
            return
        if len(self._marks) < MAX_MARKS and (m := mark(finding)) is not None:
            self._marks.append(m)
        self._rows += 1
        if self._rows > MAX_ROWS:
            return
        w = self.stream.write
        if self._rows == 1:
            heads = "".join(f'<th class="{"r" if c.justify == "right" else ""}">{escape(c.header)}</th>'
                            for c in check.columns)
            w(f'<table class="findings"><thead><tr><th>Severity</th><th>Key</th>{heads}</tr></thead><tbody>\n')
        cells = "".join(f'<td class="{"r" if c.justify == "right" else ""}">{cell(finding.fields.get(c.field))}</td>'
                        for c in check.columns)
        w(f'<tr class="finding"><td>{badge(finding.severity)}</td><td>{escape(printable(finding.key))}</td>{cells}</tr>'
          f'<tr class="line"><td colspan="{len(check.columns) + 2}">{escape(printable(finding.message))}</td></tr>\n')

    def check_end(self, outcome: CheckOutcome) -> None:
        w = self.stream.write
        if self._rows:
            w("</tbody></table>\n")
        if self._rows > MAX_ROWS:
            w(f'<p class="more">{self._rows - MAX_ROWS} more findings not shown here '
              "(the complete list: --format json or csv).</p>\n")
        w(self._heading(outcome))
        judged = outcome.status is not Status.NOT_EVALUATED
        drawn = figures(outcome, self._marks, self.options.currency) if judged else []
        if drawn:
            w(f'<figure class="chart-figure" data-check="{escape(outcome.check)}">'
              + "".join(f.svg() for f in drawn)
              + f"<figcaption>{escape(caption(outcome.check, drawn))}</figcaption></figure>\n")
        elif outcome.reason is None:
            w('<figure class="chart-figure empty"><figcaption>Nothing measured to draw.</figcaption></figure>\n')
        if outcome.brief is not None:
            w(f"<p><b>Summary:</b> {escape(printable(outcome.brief))}</p>\n")
        w("</section>\n")
        self._check, self._marks = None, []

    def _heading(self, outcome: CheckOutcome) -> str:
        status = str(outcome.status)
        summary = outcome.summary()
        if outcome.status is Status.NOT_EVALUATED:
            detail = f"not evaluated: {escape(outcome.reason or '')}"
        else:
            counts = ", ".join(f"{n} {s}" for s, n in summary["by_severity"].items())
            detail = f"{outcome.findings} finding{'s' if outcome.findings != 1 else ''}"
            detail += f" ({counts})" if counts else ""
        parts = [detail]
        for name, total in outcome.totals.items():
            parts.append(f"{escape(name.replace('_', ' '))} {escape(self.options.currency)}{total:,.2f}")
        if outcome.stats.judged is not None:
            parts.append(f"judged {outcome.stats.judged}")
        skipped = {k: v for k, v in outcome.stats.skipped.items() if v}
        if skipped:
            parts.append("skipped " + ", ".join(f"{escape(k.replace('_', ' '))} {v}" for k, v in skipped.items()))
        parts.append(f"{outcome.seconds:.2f} s")
        notes = "".join(f'<p class="note">{escape(k.replace("_", " "))}: {escape(printable(str(v)))}</p>'
                        for k, v in outcome.stats.notes.items() if v)
        params = ", ".join(f"{escape(k)}={escape(printable(str(v)))}" for k, v in outcome.params.items())
        return (f'<div class="head"><h2>{escape(outcome.check)} <span class="status-{status}">· '
                f'{escape(status.replace("_", " "))}</span></h2><p>{" · ".join(parts)}</p>'
                f'<p><small>{params}</small></p>{notes}</div>\n')

    def end(self, report: ScanReport) -> None:
        severities: Counter[Severity] = Counter()
        impact = Decimal(0)
        for outcome in report.results:
            severities.update(outcome.by_severity)
            impact += Decimal(str(outcome.totals.get("revenue_impact", 0)))
        not_evaluated = [r.check for r in report.not_evaluated]
        tiles = [(str(sum(severities.values())), "findings")]
        tiles += [(str(severities.get(s, 0)), f"{badge(s)}") for s in sorted(Severity, reverse=True)]
        tiles.append((f"{escape(self.options.currency)}{impact:,.2f}", "revenue impact (price)"))
        tiles.append((str(len(not_evaluated)), "checks not evaluated" + (f": {escape(', '.join(not_evaluated))}"
                                                                        if not_evaluated else "")))
        if report.skipped:
            tiles.append((str(len(report.skipped)), "checks skipped: " + escape(", ".join(report.skipped))))
        self.stream.write('<section class="kpis">' + "".join(
            f'<div class="tile"><b>{value}</b><span>{label}</span></div>' for value, label in tiles) + "</section>\n")
        self.stream.write("</main></body></html>\n")
