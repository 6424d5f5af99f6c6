"""Generation backends, one module each, behind :class:`synthrank.generate.backends.base.Backend`."""

from synthrank.generate.backends.base import Backend, BackendError, Completion, get_backend_class

__all__ = ["Backend", "BackendError", "Completion", "get_backend_class"]
