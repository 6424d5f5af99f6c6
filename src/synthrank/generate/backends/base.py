"""The one backend interface: an async chat call that returns text plus token counts.

Each backend declares its options as a pydantic model (``options_model``, a subclass of
:class:`BackendOptions`) and builds itself from it (:meth:`Backend.from_options`). Backends
register by alias through ``__init_subclass__`` (``name = "openai"``) when their module is
imported; the package ``__init__`` imports every backend module, and ``get_backend_class``
lives there.
Retries, backoff and concurrency do NOT live here: see ``synthrank.generate.retry`` and
``synthrank.generate.runner``. A backend classifies its failures with :class:`BackendError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field

_REGISTRY: dict[str, type["Backend"]] = {}


def execution(description: str) -> dict:
    """Field metadata for an option that changes how fast or where rows are generated, not what is
    generated (``synthrank run`` leaves such fields out of the generate stage's fingerprint)."""
    return {"description": description, "json_schema_extra": {"execution": True}}


class BackendOptions(BaseModel):
    """Options every backend has; a backend's own model adds its fields (see ``options_model``)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = Field(None, description="embedded: registry name (smollm2-135m, qwen-coder-0.5b, qwen-coder-1.5b) "
                                                "or .gguf path; openai: the server's model name.")


@dataclass
class Completion:
    """One chat answer. ``finish_reason`` is ``"stop"`` or ``"length"`` (truncated) or another backend value."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str = "stop"
    endpoint: str = ""
    top_logprobs: dict[str, float] | None = None  # the first answer token's alternatives {token: log p}, when asked


def first_token_top_logprobs(choice) -> dict[str, float] | None:
    """``{token: logprob}`` of the first answer token's ``top_logprobs`` in an OpenAI chat ``choice``
    (what ``"logprobs": true, "top_logprobs": k`` returns, vLLM and llama.cpp alike); None when absent or odd."""
    try:
        first = choice["logprobs"]["content"][0]
        return {str(t["token"]): float(t["logprob"]) for t in first["top_logprobs"]}
    except (KeyError, IndexError, TypeError, ValueError):
        return None


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
    #: the backend's options (the fields of ``synthrank generate`` and the generate section it reads)
    options_model: type[BackendOptions] = BackendOptions

    @classmethod
    def known_model_id(cls, options: BackendOptions) -> str | None:
        """The :attr:`model_id` the options would give, when it is known without building the backend
        (no model download, no server); None otherwise. Lets a complete generation skip the backend."""
        return None

    @classmethod
    def from_options(cls, options: BackendOptions) -> "Backend":
        """Build the backend from its options (``ValueError``/``RuntimeError`` when it cannot be built)."""
        raise NotImplementedError

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
