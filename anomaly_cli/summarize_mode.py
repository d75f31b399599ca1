"""Who writes the plain-English lines: --summarize auto|llm|template."""

from __future__ import annotations

import enum


class SummarizeMode(enum.StrEnum):
    AUTO = "auto"  # the model when one is configured, else the template
    LLM = "llm"
    TEMPLATE = "template"
