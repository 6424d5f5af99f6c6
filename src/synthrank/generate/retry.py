"""Retries for backend calls: exponential backoff with jitter that honours ``Retry-After``.

This is the only place that retries transport failures (5xx, 429, timeouts, broken bodies);
backends just classify errors (:class:`~synthrank.generate.backends.base.BackendError`).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass

from synthrank.generate.backends.base import Backend, BackendError, Completion


@dataclass(frozen=True)
class RetryPolicy:
    """``max_retries`` extra tries after the first; delays in seconds."""

    max_retries: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 120.0


def backoff_delay(retry: int, policy: RetryPolicy, retry_after: float | None = None, rng: random.Random | None = None) -> float:
    """Seconds to wait before retry number ``retry`` (0-based).

    Exponential ``base * 2**retry`` capped at ``max_delay``, with "equal jitter" (uniform in
    [d/2, d]). A server's ``Retry-After`` is a floor: we never come back earlier than asked
    (capped at ``max_retry_after``), plus up to 10 % jitter so that clients do not return in step.
    """
    rng = rng or random
    exp = min(policy.max_delay, policy.base_delay * (2 ** retry))
    delay = rng.uniform(exp / 2, exp)
    if retry_after is not None:
        floor = min(retry_after, policy.max_retry_after)
        delay = max(delay, floor + rng.uniform(0, 0.1 * floor + 0.01))
    return delay


async def complete_with_retries(backend: Backend, messages: list[dict], schema: dict | None, sampling: dict,
                                policy: RetryPolicy) -> tuple[Completion, int]:
    """Call ``backend.complete`` until it succeeds; return ``(completion, calls made)``.

    Raises the last :class:`BackendError` when it is not retryable or retries are exhausted;
    its message then says how many calls were made.
    """
    for retry in range(policy.max_retries + 1):
        try:
            return await backend.complete(messages, schema, sampling), retry + 1
        except BackendError as err:
            if not err.retryable or retry == policy.max_retries:
                err.message = f"{err.message} (after {retry + 1} calls)"
                err.calls = retry + 1
                raise
            await asyncio.sleep(backoff_delay(retry, policy, err.retry_after))
    raise AssertionError("unreachable")
