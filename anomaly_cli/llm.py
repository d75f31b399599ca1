"""The chat-completions adapter: any OpenAI-compatible endpoint, a hard deadline, bounded retries."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Any

DEFAULT_MODEL = "gpt-4o-mini"
# A reply longer than this is not a few lines per finding: refused, not parsed.
MAX_REPLY_CHARS = 200_000
MAX_REPLY_TOKENS = 4_000


class LLMError(Exception):
    """The model could not be used; `final` means: do not try again in this run."""

    def __init__(self, message: str, *, final: bool) -> None:
        super().__init__(message)
        self.final = final


@dataclass(frozen=True)
class LLMSettings:
    base_url: str | None
    model: str
    api_key: str | None
    timeout: float = 30.0
    max_retries: int = 2

    @property
    def configured(self) -> bool:
        return bool(self.api_key or self.base_url)

    def mask(self, text: str) -> str:
        """Error text with the API key (and any prefix of it the server echoed) removed."""
        if self.api_key:
            text = text.replace(self.api_key, "***")
            if len(self.api_key) > 8:
                text = text.replace(self.api_key[:8], "***")
        return text


def _without_credentials(url: str | None) -> str | None:
    """An endpoint fit for messages: user and password, if the URL has them, replaced by ***."""
    return re.sub(r"//[^/@]*@", "//***@", url) if url else url


class ChatClient:
    """Sends one chat request at a time; every request ends by its deadline, whatever the server does."""

    def __init__(self, settings: LLMSettings) -> None:
        import openai  # heavy: imported only when a model is actually used

        self.settings = settings
        self._openai = openai
        try:
            self._client = openai.OpenAI(
                base_url=settings.base_url or None,
                # Local servers (Ollama, vLLM) take any key; the client insists on one.
                api_key=settings.api_key or "not-needed",
                timeout=settings.timeout,
                max_retries=0,  # retries are ours, so that they fit in the deadline
            )
        except Exception as exc:  # a malformed endpoint: the template writes the lines instead
            raise LLMError(f"cannot use the endpoint {_without_credentials(settings.base_url)!r} "
                           f"({type(exc).__name__})", final=True) from None

    def complete(self, system: str, user: str) -> str:
        """The model's reply text, or LLMError. Retries 429/5xx/connection errors within the deadline."""
        deadline = time.monotonic() + self.settings.timeout
        attempt = 0
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LLMError(f"no answer within {self.settings.timeout:g} s", final=True)
            try:
                return self._call_with_deadline(system, user, remaining)
            except LLMError as exc:
                if exc.final or attempt >= self.settings.max_retries:
                    raise
                attempt += 1
                time.sleep(min(0.5 * 2 ** (attempt - 1), max(0.0, deadline - time.monotonic())))

    def _call_with_deadline(self, system: str, user: str, remaining: float) -> str:
        # The HTTP client's timeouts are per read; a server that trickles bytes could outlast
        # them. A daemon thread with a hard join timeout bounds the whole request.
        outcome: dict[str, Any] = {}

        def call() -> None:
            try:
                outcome["value"] = self._request(system, user, remaining)
            except BaseException as exc:  # handed to the waiting thread
                outcome["error"] = exc

        worker = threading.Thread(target=call, name="anomaly-llm", daemon=True)
        worker.start()
        worker.join(remaining)
        if worker.is_alive():
            raise LLMError(f"no answer within {self.settings.timeout:g} s", final=True)
        if "error" in outcome:
            raise self._translate(outcome["error"])
        return outcome["value"]

    def _request(self, system: str, user: str, remaining: float) -> str:
        response = self._client.with_options(timeout=remaining).chat.completions.create(
            model=self.settings.model,
            messages=[{"role": "system", "content": system}, {"role": "user", "content": user}],
            temperature=0.2,
            max_tokens=MAX_REPLY_TOKENS,
        )
        choices = getattr(response, "choices", None)
        if not choices or choices[0].message is None or not choices[0].message.content:
            raise LLMError("the reply had no text", final=False)
        content = str(choices[0].message.content)
        if len(content) > MAX_REPLY_CHARS:
            raise LLMError(f"the reply was too long ({len(content)} characters)", final=False)
        return content

    def _translate(self, exc: BaseException) -> LLMError:
        oa = self._openai
        if isinstance(exc, LLMError):
            return exc
        if isinstance(exc, oa.APITimeoutError):
            return LLMError(f"no answer within {self.settings.timeout:g} s", final=True)
        if isinstance(exc, oa.AuthenticationError | oa.PermissionDeniedError):
            return LLMError(f"HTTP {exc.status_code}: the API key was refused "
                            "(check ANOMALY_LLM_API_KEY)", final=True)
        if isinstance(exc, oa.RateLimitError):
            return LLMError("HTTP 429: rate-limited", final=False)
        if isinstance(exc, oa.InternalServerError):
            return LLMError(f"HTTP {exc.status_code}: server error", final=False)
        if isinstance(exc, oa.APIStatusError):
            return LLMError(f"HTTP {exc.status_code}: request refused", final=True)
        if isinstance(exc, oa.APIConnectionError):
            return LLMError(f"cannot reach {_without_credentials(self.settings.base_url) or 'the API'}",
                            final=False)
        if isinstance(exc, oa.APIError | ValueError | TypeError):
            # Malformed JSON or a reply of the wrong shape.
            return LLMError(f"unreadable reply ({type(exc).__name__})", final=False)
        return LLMError(self.settings.mask(f"{type(exc).__name__}: {exc}"), final=True)
