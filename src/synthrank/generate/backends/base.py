"""The one backend interface: an async chat call that returns text plus token counts.

Backends register themselves by alias through ``__init_subclass__`` (``name = "openai"``), so
``get_backend_class("openai")`` finds them and a new backend needs no edit elsewhere.
Retries, backoff and concurrency do NOT live here: see ``synthrank.generate.retry`` and
``synthrank.generate.runner``. A backend classifies its failures with :class:`BackendError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

_REGISTRY: dict[str, type["Backend"]] = {}


@dataclass
class Completion:
    """One chat answer. ``finish_reason`` is ``"stop"`` or ``"length"`` (truncated) or another backend value."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    endpoint: str = ""


@dataclass
class BackendError(Exception):
    """A failed call. ``retryable`` says whether trying again may help; ``retry_after`` (seconds) is the
    server's ``Retry-After`` when it sent one. ``message`` never contains credentials."""

    message: str
    retryable: bool = True
    retry_after: float | None = None
    status: int | None = field(default=None)

    def __str__(self) -> str:
        return self.message


class Backend:
    """Base class. Subclasses set ``name`` and implement :meth:`complete` and :attr:`model_id`."""

    name: str = ""
    #: True when the backend enforces ``response_format`` JSON schemas itself.
    enforces_schema: bool = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.name:
            _REGISTRY[cls.name] = cls

    @property
    def model_id(self) -> str:
        """A string that identifies the model weights (recorded per row; part of the generation key)."""
        raise NotImplementedError

    @property
    def max_concurrency(self) -> int | None:
        """Largest useful number of requests in flight, or None for no limit of its own."""
        return None

    async def complete(self, messages: list[dict], schema: dict | None, sampling: dict) -> Completion:
        """Send one chat request. ``sampling`` has ``temperature``, ``top_p``, ``max_tokens`` and ``seed``.

        Raises :class:`BackendError` on any failure.
        """
        raise NotImplementedError

    async def aclose(self) -> None:
        """Release connections, threads or model memory."""


def get_backend_class(name: str) -> type[Backend]:
    """Return the registered backend class for ``name``; ``ValueError`` lists the known ones."""
    import synthrank.generate.backends.embedded  # noqa: F401  (registration)
    import synthrank.generate.backends.openai  # noqa: F401

    if name not in _REGISTRY:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]
