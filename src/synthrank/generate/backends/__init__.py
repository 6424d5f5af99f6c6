"""Generation backends, one module each, behind :class:`synthrank.generate.backends.base.Backend`.

A new backend is one module (a ``Backend`` subclass with ``name``, ``options_model`` and
``from_options``) plus its import below (the registration); its options model joins
``GenerateJob``'s bases in ``generate/job.py`` so that YAML and the CLI accept its fields.
"""

from synthrank.generate.backends.base import _REGISTRY, Backend, BackendError, BackendOptions, Completion
from synthrank.generate.backends import embedded as _embedded  # noqa: F401 - registration
from synthrank.generate.backends import openai as _openai  # noqa: F401 - registration
from synthrank.generate.backends.embedded import EmbeddedBackend, EmbeddedOptions
from synthrank.generate.backends.openai import OpenAIBackend, OpenAIOptions


def get_backend_class(name: str) -> type[Backend]:
    """Return the registered backend class for ``name``; ``ValueError`` lists the known ones."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def backend_names() -> list[str]:
    """The registered backends' names, sorted."""
    return sorted(_REGISTRY)


__all__ = ["Backend", "BackendError", "BackendOptions", "Completion", "EmbeddedBackend", "EmbeddedOptions", "OpenAIBackend",
           "OpenAIOptions", "backend_names", "get_backend_class"]
