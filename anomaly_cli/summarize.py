"""Plain-English lines from an LLM, checked against each finding, with the template line as fallback."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from anomaly_cli.errors import UsageError
from anomaly_cli.llm import DEFAULT_MODEL, ChatClient, LLMError, LLMSettings
from anomaly_cli.model import CheckOutcome, Finding
from anomaly_cli.render.encode import dumps
from anomaly_cli.seed_schema import PERSONAL
from anomaly_cli.summarize_mode import SummarizeMode

if TYPE_CHECKING:
    from anomaly_cli.checks import Check


# Never sent to a model unless --llm-send-personal-data: these fields, and any text that looks
# like an e-mail address or a phone number.
PERSONAL_FIELDS = PERSONAL
EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
PHONE = re.compile(r"(?<![\w.])\+?\d[\d\s().-]{7,}\d(?![\w.])")
NUMBER = re.compile(r"\d[\d,]*(?:\.\d+)?")
PLACEHOLDER = re.compile(r"\b(?:Person|Email|Phone)-[A-Z]+\b")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")  # a model line with these could rewrite a terminal

BRIEF_FINDINGS = 50  # the most severe findings a brief is written from
SYSTEM = (
    "You turn anomaly findings from a transaction audit into short plain-English lines for an operations "
    "ticket. Rules: one line per finding; keep every identifier, amount, date, time and percentage exactly "
    "as the finding gives them; never add a number the finding does not contain; keep placeholders such as "
    "Person-A exactly as written. Reply with JSON only."
)


@dataclass
class SummarizeSettings:
    mode: SummarizeMode
    llm: LLMSettings
    chunk_size: int = 20
    max_findings: int = 100
    send_personal_data: bool = False
    brief: bool = False


def from_settings(settings: Any) -> SummarizeSettings:
    """The summariser's settings; --summarize llm without a configured model is a usage error."""
    llm = LLMSettings(
        base_url=settings["llm.base_url"],
        model=settings["llm.model"] or DEFAULT_MODEL,
        api_key=settings["llm.api_key"],
        timeout=settings["llm.timeout"],
        max_retries=settings["llm.max_retries"],
    )
    mode = settings["summarize"]
    if mode is SummarizeMode.LLM and not llm.configured:
        raise UsageError("--summarize llm needs a model",
                         hint="set ANOMALY_LLM_API_KEY (or OPENAI_API_KEY) and/or ANOMALY_LLM_BASE_URL")
    if mode is SummarizeMode.AUTO:
        mode = SummarizeMode.LLM if llm.configured else SummarizeMode.TEMPLATE
    return SummarizeSettings(
        mode=mode, llm=llm, chunk_size=settings["llm.chunk_size"], max_findings=settings["llm.max_findings"],
        send_personal_data=settings["llm.send_personal_data"], brief=settings["brief"],
    )


class Pseudonyms:
    """Stable placeholders for personal values, so the model never sees them; reversible locally."""

    def __init__(self) -> None:
        self._forward: dict[str, str] = {}
        self._backward: dict[str, str] = {}
        self._counts: Counter[str] = Counter()

    def _placeholder(self, value: str, kind: str) -> str:
        if value not in self._forward:
            n = self._counts[kind]
            self._counts[kind] += 1
            letters = ""
            while True:  # A..Z, AA..: letters only, so placeholders add no numbers to a line
                letters = chr(ord("A") + n % 26) + letters
                n = n // 26 - 1
                if n < 0:
                    break
            self._forward[value] = f"{kind}-{letters}"
            self._backward[f"{kind}-{letters}"] = value
        return self._forward[value]

    def scrub(self, name: str, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if name in PERSONAL_FIELDS:
            return self._placeholder(value, "Person")
        value = EMAIL.sub(lambda m: self._placeholder(m.group(), "Email"), value)
        return PHONE.sub(lambda m: self._placeholder(m.group(), "Phone"), value)

    def scrub_text(self, text: str, finding: Finding) -> str:
        """The finding's line with every personal value it names replaced: its personal fields,
        the people its check declared in `personal`, e-mail addresses and phone numbers."""
        people = [finding.fields.get(name) for name in PERSONAL_FIELDS] + list(finding.personal)
        # Longest first, so that "Eva Green" is replaced before a shorter name inside it.
        for value in sorted({p for p in people if isinstance(p, str) and p}, key=len, reverse=True):
            text = text.replace(value, self._placeholder(value, "Person"))
        return self.scrub("", text)

    def restore(self, text: str) -> str:
        return PLACEHOLDER.sub(lambda m: self._backward.get(m.group(), m.group()), text)

    def known(self, token: str) -> bool:
        return token in self._backward


def _numbers_of(value: Any, out: set[Decimal]) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, int | Decimal | float):
        number = Decimal(str(value))
        out.update({number, abs(number)})
    elif isinstance(value, datetime | date):
        out.update(Decimal(part) for part in (value.year, value.month, value.day))
        if isinstance(value, datetime):
            out.update(Decimal(part) for part in (value.hour, value.minute, value.second))
    elif isinstance(value, str):
        for token in NUMBER.findall(value):
            _numbers_of(_parse_number(token), out)
    elif isinstance(value, Mapping):
        for item in value.values():
            _numbers_of(item, out)


def _parse_number(token: str) -> Decimal | None:
    try:
        return Decimal(token.replace(",", ""))
    except InvalidOperation:
        return None


def allowed_numbers(finding: Finding) -> set[Decimal]:
    """Every number a line about `finding` may quote: its fields' and its template line's."""
    out: set[Decimal] = set()
    _numbers_of(dict(finding.fields), out)
    _numbers_of(finding.message, out)
    return out


def _quotes_only(text: str, allowed: set[Decimal]) -> bool:
    """True when every number in `text` is one of `allowed`, at the precision it is written with."""
    for token in NUMBER.findall(text):
        number = _parse_number(token)
        if number is None:
            return False
        places = -number.as_tuple().exponent if isinstance(number.as_tuple().exponent, int) else 0
        quantum = Decimal(1).scaleb(-max(places, 0))
        if not any(number == value or value.quantize(quantum, rounding=ROUND_HALF_UP) == number
                   for value in allowed):
            return False
    return True


def anchor(finding: Finding) -> str:
    """The number a line must name so that it is visibly about this finding."""
    for name in ("transaction_id", "customer_id"):
        if finding.fields.get(name) is not None:
            return str(finding.fields[name])
    for value in finding.fields.values():
        if isinstance(value, datetime | date):
            return str(value.day)
    return ""


def valid_line(line: Any, finding: Finding, own: set[str]) -> bool:
    """A model line is used only if it is one line, names the finding and quotes only its numbers."""
    if not isinstance(line, str) or not line.strip() or CONTROL.search(line.strip()) or len(line) > 600:
        return False
    numbers = NUMBER.findall(line)
    if anchor(finding) and anchor(finding) not in {t.replace(",", "") for t in numbers}:
        return False
    if any(token not in own for token in PLACEHOLDER.findall(line)):
        return False  # another finding's person, or an invented one
    return _quotes_only(line, allowed_numbers(finding))


def parse_reply(text: str) -> dict[str, Any] | list[str]:
    """{id: line} from a JSON reply, or the bare lines when the model ignored the JSON request."""
    body = text.strip()
    if body.startswith("```"):
        body = body.strip("`").split("\n", 1)[-1] if "\n" in body else ""
    start, end = body.find("{"), body.rfind("}")
    if start != -1 and end > start:
        try:
            data = json.loads(body[start:end + 1])
            entries = data.get("lines") if isinstance(data, dict) else None
            if isinstance(entries, list):
                return {str(e.get("id")): e.get("line") for e in entries if isinstance(e, dict)}
        except (ValueError, AttributeError):
            pass
    return [line.strip() for line in text.splitlines() if line.strip()]


@dataclass
class Summarizer:
    """Writes the lines people read (text, table): the model's when it passes the checks, else
    the template's. JSON, JSON Lines and CSV findings never pass through here."""

    settings: SummarizeSettings
    notes: list[str] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)
    _client: ChatClient | None = None
    _disabled: bool = False
    _sent: int = 0

    @property
    def uses_llm(self) -> bool:
        return self.settings.mode is SummarizeMode.LLM and not self._disabled

    # -- lines ------------------------------------------------------------------------
    def rewrite(self, check: type[Check], findings: Iterable[Finding]) -> Iterator[Finding]:
        """The findings with the model's line as `message` where it wrote a good one, in chunks."""
        if not self.uses_llm:
            yield from findings
            return
        chunk: list[Finding] = []
        for finding in findings:
            chunk.append(finding)
            if len(chunk) >= self.settings.chunk_size:
                yield from self._chunk(check, chunk)
                chunk = []
        if chunk:
            yield from self._chunk(check, chunk)

    def _chunk(self, check: type[Check], findings: list[Finding]) -> list[Finding]:
        budget = max(0, self.settings.max_findings - self._sent)
        to_model = findings[:budget] if self.uses_llm else []
        lines = self._ask(check, to_model) if to_model else {}
        self._sent += len(to_model)
        out = []
        for index, finding in enumerate(findings):
            line = lines.get(index)
            if line is not None:
                self.stats["llm"] += 1
                out.append(replace(finding, message=line))
            else:
                self.stats["template"] += 1
                out.append(finding)
        return out

    def _ask(self, check: type[Check], findings: list[Finding]) -> dict[int, str]:
        masks = Pseudonyms()
        payload, own = [], []
        for index, finding in enumerate(findings):
            fields = {name: (value if self.settings.send_personal_data else masks.scrub(name, value))
                      for name, value in finding.fields.items()}
            draft = finding.message if self.settings.send_personal_data else masks.scrub_text(
                finding.message, finding)
            entry = {"id": f"F{index + 1}", "severity": str(finding.severity), "fields": fields, "draft": draft}
            payload.append(entry)
            own.append(set(PLACEHOLDER.findall(dumps(entry))))
        user = (
            f"Check: {check.name}. Target line format: {check.llm_target}\n"
            f"Write exactly {len(payload)} lines, one per finding, in the target format. Reply as "
            '{"lines": [{"id": "F1", "line": "..."}, ...]}.\nFindings:\n' + dumps(payload)
        )
        reply = self._complete(user)
        if reply is None:
            return {}
        parsed = parse_reply(reply)
        by_index: dict[int, str] = {}
        for index, finding in enumerate(findings):
            line = parsed.get(f"F{index + 1}") if isinstance(parsed, dict) else (
                parsed[index] if len(parsed) == len(findings) else None)
            if valid_line(line, finding, own[index]):
                by_index[index] = masks.restore(line.strip())
        rejected = len(findings) - len(by_index)
        if rejected:
            self.stats["rejected"] += rejected
        return by_index

    def _complete(self, user: str) -> str | None:
        try:
            if self._client is None:
                self._client = ChatClient(self.settings.llm)
            return self._client.complete(SYSTEM, user)
        except LLMError as exc:
            if exc.final:
                self._disabled = True
            self._note(f"llm: {self.settings.llm.mask(str(exc))}; template lines used instead")
            return None

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # -- brief ------------------------------------------------------------------------
    def brief(self, check: type[Check], outcome: CheckOutcome, worst: list[Finding]) -> str:
        """An executive summary of one check: the model's if it passes the checks, else the template's."""
        template = template_brief(check, outcome, worst)
        if not self.uses_llm or not worst:
            return template
        masks = Pseudonyms()
        payload = [{"severity": str(f.severity),
                    "fields": {n: (v if self.settings.send_personal_data else masks.scrub(n, v))
                               for n, v in f.fields.items()}} for f in worst]
        summary = outcome.summary()
        user = (
            f"Check: {check.name}. Summary: {dumps(summary)}.\nFindings:\n{dumps(payload)}\n"
            "Write an executive summary of at most 3 sentences: what happened, who was impacted, why it is "
            f"suspicious, and what to check first ({check.llm_advice}). "
            'Reply as {"lines": [{"id": "brief", "line": "..."}]}.'
        )
        reply = self._complete(user)
        parsed = parse_reply(reply) if reply else {}
        text = parsed.get("brief") if isinstance(parsed, dict) else None
        allowed: set[Decimal] = set()
        for finding in worst:
            allowed |= allowed_numbers(finding)
        _numbers_of(summary, allowed)
        _numbers_of(template, allowed)
        if (isinstance(text, str) and text.strip() and not CONTROL.search(text) and _quotes_only(text, allowed)
                and all(masks.known(t) for t in PLACEHOLDER.findall(text))):
            return masks.restore(" ".join(text.split()))
        return template


def template_brief(check: type[Check], outcome: CheckOutcome, worst: list[Finding]) -> str:
    """The deterministic executive summary of one check."""
    if outcome.reason is not None:
        return f"{check.name}: not evaluated ({outcome.reason})."
    if not outcome.findings:
        return f"{check.name}: no anomalies found."
    counts = ", ".join(f"{n} {s}" for s, n in outcome.summary()["by_severity"].items())
    people = {f.fields.get("customer_id") for f in worst if f.fields.get("customer_id") is not None}
    parts = [f"{check.name}: {outcome.findings} finding{'s' if outcome.findings != 1 else ''} ({counts})."]
    if people:
        parts.append(f"{len(people)} customer{'s' if len(people) != 1 else ''} involved.")
    if worst:
        parts.append(f"Most severe: {worst[0].message}")
    parts.append(f"Check first: {check.llm_advice}.")
    return " ".join(parts)
