"""Backend for any OpenAI-compatible chat endpoint (vLLM, SGLang, llama.cpp server, Ollama, hosted APIs).

Several base URLs can be used together: each request goes to the endpoint with the fewest
requests in flight. The API key is read from an environment variable (default
``OPENAI_API_KEY``), sent only in the ``Authorization`` header, and never logged or put in an
error message. HTTP status 429 and 5xx, timeouts and connection errors are retryable; the
``Retry-After`` header (seconds) is passed up to the retry layer.
"""

from __future__ import annotations

import json
import os

import httpx

from synthrank.generate.backends.base import Backend, BackendError, Completion


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from email.utils import parsedate_to_datetime
        import time

        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class OpenAIBackend(Backend):
    """Chat completions over HTTP.

    Args:
        base_urls: one or more URLs ending before ``/chat/completions`` (e.g. ``http://host:8000/v1``).
        model: model name sent in each request.
        api_key_env: name of the environment variable holding the key (unset = no auth header).
        timeout: seconds for a whole request.
        use_schema: send ``response_format`` with a JSON schema (vLLM, SGLang, llama.cpp enforce it;
            turn off for servers that reject it).
    """

    name = "openai"

    def __init__(self, base_urls: list[str], model: str, api_key_env: str = "OPENAI_API_KEY",
                 timeout: float = 120.0, use_schema: bool = True):
        if not base_urls:
            raise ValueError("the openai backend needs at least one --base-url")
        self.base_urls = [u.rstrip("/") for u in base_urls]
        self.model = model
        self.enforces_schema = use_schema
        self._in_flight = {u: 0 for u in self.base_urls}
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(api_key_env, "")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        self._client = httpx.AsyncClient(headers=headers, timeout=httpx.Timeout(timeout), limits=limits)

    @property
    def model_id(self) -> str:
        return f"openai:{self.model}"

    def _pick_endpoint(self) -> str:
        return min(self.base_urls, key=lambda u: self._in_flight[u])

    async def complete(self, messages: list[dict], schema: dict | None, sampling: dict) -> Completion:
        body = {"model": self.model, "messages": messages, **sampling}
        if schema is not None and self.enforces_schema:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}}
        url = self._pick_endpoint()
        self._in_flight[url] += 1
        try:
            response = await self._client.post(f"{url}/chat/completions", json=body)
        except httpx.TimeoutException:
            raise BackendError(f"timeout from {url}", retryable=True) from None
        except httpx.TransportError as err:
            raise BackendError(f"connection error from {url}: {type(err).__name__}", retryable=True) from None
        finally:
            self._in_flight[url] -= 1
        status = response.status_code
        if status == 429 or status >= 500:
            raise BackendError(f"HTTP {status} from {url}", retryable=True, retry_after=_retry_after(response), status=status)
        if status >= 400:
            raise BackendError(f"HTTP {status} from {url}: {response.text[:200]}", retryable=False, status=status)
        try:
            data = response.json()
            choice = data["choices"][0]
            text = choice["message"]["content"] or ""
            usage = data.get("usage") or {}
        except (json.JSONDecodeError, KeyError, IndexError, TypeError):
            raise BackendError(f"malformed response body from {url}", retryable=True) from None
        return Completion(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=str(choice.get("finish_reason") or "stop"),
            endpoint=url,
        )

    async def aclose(self) -> None:
        await self._client.aclose()
