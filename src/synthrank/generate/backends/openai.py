"""Backend for any OpenAI-compatible chat endpoint (vLLM, SGLang, llama.cpp server, Ollama, hosted APIs).

Several base URLs can be used together. Each request goes to the *healthy* endpoint with the
fewest requests in flight; an endpoint whose request failed at the transport level (connection
error, timeout, 5xx, 429) is out of rotation for a backoff that doubles with each consecutive
failure (1 s up to 60 s), so a dead endpoint among several no longer absorbs the retries. When
every endpoint is out, the one that comes back first is tried.

Secrets: the API key is read from an environment variable (default ``OPENAI_API_KEY``) and sent
only in the ``Authorization`` header; credentials in a base URL (``http://user:pw@host``) are used
for the request but every label, error message and stored ``endpoint`` shows the URL without
them; a server error body is stored only after the key, URL passwords and any ``Bearer`` token
are replaced by ``***``.

``timeout`` is a deadline for the whole request (connect, send, and a body trickled byte by
byte), not per read. HTTP status 429 and 5xx, timeouts, connection errors and malformed bodies
are retryable; other 4xx are not.

Transport: one ``aiohttp`` session per event loop, keep-alive connections without a pool limit
(the loop's concurrency bounds them). ``aiohttp`` sends about 30x the requests per second of
``httpx`` at 64 concurrent requests on one core (``benchmarks/generate.py --scale``), which is what
lets one client keep a fast server busy.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import time
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
from pydantic import Field, field_validator

from synthrank.generate.backends.base import Backend, BackendError, BackendOptions, Completion, execution, first_token_top_logprobs

_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")


def _retry_after(headers) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def check_base_url(url: str) -> str:
    """``url`` without a trailing slash; ValueError (naming the URL without credentials) unless http(s) with a host."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"base URL {redact_url(url)!r} is not an http:// or https:// URL with a host "
                         "(e.g. http://127.0.0.1:8000/v1)")
    try:
        parts.port  # noqa: B018 - raises for a malformed port
    except ValueError:
        raise ValueError(f"base URL {redact_url(url)!r} has an invalid port") from None
    return url.strip().rstrip("/")


def redact_url(url: str) -> str:
    """The URL with any ``user:password@`` removed (what logs, errors and the store may show)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def redact(text: str, secrets: list[str]) -> str:
    """``text`` with every secret and every ``Bearer <token>`` replaced by ``***``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _BEARER.sub(r"\1***", text)


def _token_count(value) -> int:
    """A usage count as an int; anything odd (a string, a float, null) counts as 0 (it is only bookkeeping)."""
    if isinstance(value, bool):
        return 0
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, float) and value.is_integer():
        return max(0, int(value))
    return 0


def _content_text(content) -> str:
    """``message.content`` as text: a string, or a list of ``{"type": "text", "text": ...}`` parts.

    Anything else (a number, an object) raises ValueError with what it was."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and isinstance(p.get("text"), str) for p in content):
        return "".join(p["text"] for p in content)
    raise ValueError(f"message.content is {type(content).__name__}, not text")


class _Endpoint:
    """One base URL with its in-flight count and health (out of rotation until ``down_until``).

    Credentials in the URL become a Basic ``Authorization`` header (``auth``); ``post_url`` is the
    completions URL without them."""

    def __init__(self, url: str) -> None:
        self.url, self.label = url, redact_url(url)
        self.post_url = f"{self.label}/chat/completions"
        parts = urlsplit(url)
        pair = f"{unquote(parts.username or '')}:{unquote(parts.password or '')}".encode()
        self.auth = "Basic " + base64.b64encode(pair).decode() if parts.username or parts.password else None
        self.in_flight, self.failures, self.down_until = 0, 0, 0.0

    def failed(self, now: float) -> None:
        self.failures += 1
        self.down_until = now + min(60.0, 2.0 ** (self.failures - 1))

    def succeeded(self) -> None:
        self.failures, self.down_until = 0, 0.0


class OpenAIOptions(BackendOptions):
    """Options of the openai backend (any OpenAI-compatible chat server)."""

    base_url: list[str] = Field(default_factory=list, **execution(
        "openai: endpoint base URL (default http://127.0.0.1:8000/v1); give several to use them together."))
    api_key_env: str = Field("OPENAI_API_KEY", **execution("openai: environment variable holding the API key (never printed)."))
    timeout: float = Field(120.0, gt=0, **execution("openai: deadline in seconds for a whole request."))
    use_schema: bool = Field(True, description="openai: send response_format with the answer's JSON schema "
                                               "(--no-schema for servers that reject it).")

    @field_validator("base_url")
    @classmethod
    def _urls(cls, value: list[str]) -> list[str]:
        return [check_base_url(u) for u in value]


async def _close_at_loop_end(session: aiohttp.ClientSession):
    """Wait at ``yield`` until the event loop shuts down its async generators, then close ``session``
    (closing an already closed session does nothing)."""
    try:
        yield
    finally:
        await session.close()


class OpenAIBackend(Backend):
    """Chat completions over HTTP.

    Args:
        base_urls: one or more URLs ending before ``/chat/completions`` (e.g. ``http://host:8000/v1``).
        model: model name sent in each request.
        api_key_env: name of the environment variable holding the key (unset = no auth header).
        timeout: deadline in seconds for a whole request (> 0).
        use_schema: send ``response_format`` with a JSON schema (vLLM, SGLang, llama.cpp enforce it;
            turn off for servers that reject it).
    """

    name = "openai"
    options_model = OpenAIOptions

    @classmethod
    def known_model_id(cls, options: OpenAIOptions) -> str | None:
        return f"openai:{options.model}" if options.model else None  # as model_id names it

    @classmethod
    def from_options(cls, options: OpenAIOptions) -> "OpenAIBackend":
        if not options.model:
            raise ValueError("a model name is required with the openai backend (the server's model name)")
        return cls(options.base_url or ["http://127.0.0.1:8000/v1"], options.model, api_key_env=options.api_key_env,
                   timeout=options.timeout, use_schema=options.use_schema)

    def __init__(self, base_urls: list[str], model: str, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 120.0, use_schema: bool = True):
        if not base_urls:
            raise ValueError("the openai backend needs at least one --base-url")
        if not timeout > 0:
            raise ValueError(f"--timeout must be > 0 seconds, got {timeout}")
        self.endpoints = [_Endpoint(check_base_url(u)) for u in base_urls]
        self.base_urls = [e.url for e in self.endpoints]
        self.model = model
        self.timeout = float(timeout)
        self.enforces_schema = use_schema
        self._headers = {"Content-Type": "application/json"}
        key = os.environ.get(api_key_env, "")
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self._secrets = [key] + [p for u in self.base_urls for p in (urlsplit(u).password, urlsplit(u).username) if p]
        self._session: aiohttp.ClientSession | None = None
        self._session_loop = None
        self._session_closer = None  # keeps the closing generator alive (the loop holds it weakly)

    async def _client(self) -> aiohttp.ClientSession:
        """The session of the running event loop (a new one when the backend is used from another loop).

        A session belongs to one loop and is closed when that loop shuts down (``asyncio.run`` and
        ``loop.shutdown_asyncgens()`` close the loop's live async generators; :func:`_close_at_loop_end`
        is one), so a backend used from several loops without :meth:`aclose` leaves no socket open."""
        loop = asyncio.get_running_loop()
        if self._session is None or self._session.closed or self._session_loop is not loop:
            connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=30)
            self._session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout),
                                                  headers=self._headers, auto_decompress=True)
            self._session_loop = loop
            self._session_closer = _close_at_loop_end(self._session)
            await self._session_closer.__anext__()  # registered with the running loop from here on
        return self._session

    @property
    def model_id(self) -> str:
        return f"openai:{self.model}"

    def _pick_endpoint(self) -> _Endpoint:
        if len(self.endpoints) == 1:
            return self.endpoints[0]
        now = time.monotonic()
        healthy = [e for e in self.endpoints if e.down_until <= now]
        if healthy:
            return min(healthy, key=lambda e: e.in_flight)
        return min(self.endpoints, key=lambda e: e.down_until)

    async def complete(self, messages: list[dict], schema: dict | None, sampling: dict) -> Completion:
        body = {"model": self.model, "messages": messages, **sampling}
        if schema is not None and self.enforces_schema:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
        endpoint = self._pick_endpoint()
        label = endpoint.label
        endpoint.in_flight += 1
        try:
            status, text, headers = await self._post(endpoint, json.dumps(body).encode())
        except asyncio.TimeoutError:
            endpoint.failed(time.monotonic())
            raise BackendError(f"timeout from {label} (no complete answer within {self.timeout:g} s)", retryable=True) from None
        except aiohttp.ClientError as err:
            endpoint.failed(time.monotonic())
            raise BackendError(f"connection error from {label}: {type(err).__name__}", retryable=True) from None
        finally:
            endpoint.in_flight -= 1
        if status == 429 or status >= 500:
            endpoint.failed(time.monotonic())
            raise BackendError(f"HTTP {status} from {label}", retryable=True, retry_after=_retry_after(headers), status=status)
        endpoint.succeeded()
        if status >= 400:
            raise BackendError(f"HTTP {status} from {label}: {redact(text[:200], self._secrets)}", retryable=False, status=status)
        try:
            data = json.loads(text)
            choice = data["choices"][0]
            content = _content_text(choice["message"]["content"])
            usage = data.get("usage") or {}
            if not isinstance(usage, dict):
                usage = {}
        except (json.JSONDecodeError, KeyError, IndexError, TypeError, AttributeError, ValueError) as err:
            detail = str(err) if isinstance(err, ValueError) and not isinstance(err, json.JSONDecodeError) else type(err).__name__
            raise BackendError(f"malformed response body from {label} ({detail})", retryable=True) from None
        return Completion(
            text=content,
            prompt_tokens=_token_count(usage.get("prompt_tokens")),
            completion_tokens=_token_count(usage.get("completion_tokens")),
            finish_reason=str(choice.get("finish_reason") or "stop") if isinstance(choice, dict) else "stop",
            endpoint=label,
            top_logprobs=first_token_top_logprobs(choice) if sampling.get("logprobs") else None,
        )

    async def _post(self, endpoint: _Endpoint, body: bytes) -> tuple[int, str, "multidict.CIMultiDictProxy"]:
        """POST and read the whole body (the session's total timeout covers a trickled body too):
        ``(status, body text, headers)``."""
        headers = {"Authorization": endpoint.auth} if endpoint.auth else None
        async with (await self._client()).post(endpoint.post_url, data=body, headers=headers) as response:
            raw = await response.read()
            return response.status, raw.decode("utf-8", errors="replace"), response.headers

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
