"""Encoding texts with a sentence-transformers model, and a content-addressed embedding cache.

The cache key is a fingerprint of (1) the model's weights (every tensor's name, dtype, shape
and bytes), (2) its settings (module stack with each module's config, max sequence length,
similarity function, prompts) and (3) the exact texts and ids encoded. Changing one weight,
one setting or one document gives a different key, so stale vectors are never reused.
Entries are plain ``.npy`` (loaded with ``allow_pickle=False``) plus a JSON sidecar.

Precision: ``fp32`` (default) or ``bf16``, which runs the model under ``torch.autocast`` with
bfloat16 (weights stay fp32; outputs are float32). On CPUs with AVX512-BF16 this encoded SciFact
documents with MiniLM about 2x faster at cosine similarity > 0.9999 to the fp32 vectors
(``benchmarks/encode.py --precision``). A bf16 cache entry has its own key.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from synthrank.data.jsonl import atomic_write

PRECISIONS = ("fp32", "bf16")


def default_cache_dir() -> Path:
    """``$SYNTHRANK_CACHE`` or ``$XDG_CACHE_HOME/synthrank`` or ``~/.cache/synthrank``."""
    if os.environ.get("SYNTHRANK_CACHE"):
        return Path(os.environ["SYNTHRANK_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "synthrank"


def model_settings(model) -> dict:
    """The settings of a SentenceTransformer that change its embeddings (JSON-serialisable)."""
    modules = []
    for module in model:
        entry = {"class": type(module).__name__}
        if hasattr(module, "get_config_dict"):
            try:
                entry["config"] = module.get_config_dict()
            except Exception:  # a module without a usable config still contributes its class
                pass
        modules.append(entry)
    return {
        "modules": modules,
        "max_seq_length": getattr(model, "max_seq_length", None),
        "similarity": getattr(model, "similarity_fn_name", None),
        "prompts": getattr(model, "prompts", None),
        "default_prompt_name": getattr(model, "default_prompt_name", None),
    }


def model_fingerprint(model) -> str:
    """Hex digest of the model's weights and settings."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(model_settings(model), sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
        flat = tensor.detach().cpu().contiguous().reshape(-1)  # 0-dim tensors cannot be viewed as bytes
        digest.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    return digest.hexdigest()


def texts_fingerprint(ids: list[str], texts: list[str]) -> str:
    """Hex digest of the ordered (id, text) pairs."""
    digest = hashlib.blake2b(digest_size=16)
    for doc_id, text in zip(ids, texts):
        digest.update(doc_id.encode())
        digest.update(b"\x00")
        digest.update(text.encode())
        digest.update(b"\x01")
    return digest.hexdigest()


def check_precision(precision: str) -> str:
    """``precision`` if it is one of :data:`PRECISIONS`, else ``ValueError`` naming the choices."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU computes bfloat16 natively (x86: AVX512-BF16 or AMX-BF16; Arm: the BF16 feature).

    ``cpuinfo`` is the text of ``/proc/cpuinfo`` (read when None). Without it (not Linux) the
    answer is False: bf16 emulated in software is ~20x slower than fp32 (measured on a 2-core EPYC).
    """
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            flags = set(value.split())
            return bool(flags & {"avx512_bf16", "amx_bf16", "bf16"})
    return False


def native_bf16(device_type: str) -> bool:
    """Whether a ``device_type`` (``"cuda"`` or ``"cpu"``) device computes bfloat16 natively; the one rule
    shared by encoding (:func:`encode_precision`) and training (``train.trainer.resolve_precision``)."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type == "cpu":
        return cpu_has_native_bf16()
    return False


def encode_precision(precision: str, model) -> tuple[str, str | None]:
    """``(precision used, warning)`` for encoding on ``model``'s device: ``bf16`` only where the device
    runs bfloat16 natively (a GPU that supports it, a CPU with AVX512-BF16/AMX/Arm BF16), else ``fp32``
    with a warning (emulated bf16 autocast encoded ~20x slower than fp32 on a 2-core EPYC)."""
    if check_precision(precision) == "fp32":
        return "fp32", None
    device = getattr(getattr(model, "device", None), "type", "cpu")
    if native_bf16(device):
        return "bf16", None
    return "fp32", f"precision bf16: this {'GPU' if device == 'cuda' else 'CPU'} has no native bfloat16; encoding in fp32"


def _precision_context(model, precision: str):
    """``torch.autocast`` for ``bf16`` on the model's device type, a no-op context for ``fp32``."""
    if check_precision(precision) == "fp32":
        return contextlib.nullcontext()
    device = getattr(getattr(model, "device", None), "type", "cpu")
    return torch.autocast(device_type=device, dtype=torch.bfloat16)


def encode_texts(model, texts: list[str], kind: str = "document", batch_size: int = 64, progress: bool = True,
                 desc: str | None = None, precision: str = "fp32", processes: int = 1) -> np.ndarray:
    """Embeddings ``[len(texts), dim]`` float32 in input order.

    Texts are sorted by length (longest first) so each batch pads little, encoded in chunks of
    ``8 * batch_size`` under one progress bar, and put back in input order. ``kind`` picks the
    model's query or document prompt (``encode_query`` / ``encode_document``) when it has them.
    ``precision`` is ``fp32`` or ``bf16`` (autocast, see the module doc). ``processes > 1`` encodes
    with sentence-transformers' multi-process pool: one process per GPU when there are GPUs (up to
    ``processes``), else ``processes`` CPU processes (each with its share of the cores).
    """
    if not texts:
        return np.zeros((0, model.get_embedding_dimension() or 0), dtype=np.float32)
    encode = getattr(model, "encode_query" if kind == "query" else "encode_document", model.encode)
    order = np.argsort([-len(t) for t in texts], kind="stable")
    pool = _start_pool(model, processes) if processes > 1 else None
    chunk = 8 * batch_size * max(1, processes)
    parts = []
    try:
        with _precision_context(model, precision), tqdm(total=len(texts), desc=desc or f"encode {kind}s", unit="text",
                                                         disable=not progress) as bar:
            for start in range(0, len(texts), chunk):
                batch_texts = [texts[i] for i in order[start : start + chunk]]
                if pool is None:
                    vectors = encode(batch_texts, batch_size=batch_size, convert_to_tensor=True, show_progress_bar=False)
                    parts.append(vectors.float().cpu().numpy())
                else:
                    vectors = encode(batch_texts, batch_size=batch_size, pool=pool, show_progress_bar=False,
                                     chunk_size=max(batch_size, len(batch_texts) // processes + 1))
                    parts.append(np.asarray(vectors, dtype=np.float32))
                bar.update(len(batch_texts))
    finally:
        if pool is not None:
            model.stop_multi_process_pool(pool)
    sorted_embeddings = np.concatenate(parts).astype(np.float32, copy=False)
    embeddings = np.empty_like(sorted_embeddings)
    embeddings[order] = sorted_embeddings
    return embeddings


def _start_pool(model, processes: int):
    """A sentence-transformers multi-process pool: the GPUs when present (up to ``processes``), else CPU processes.

    CPU workers are started with their share of the cores (:func:`worker_environment`): a spawned
    worker otherwise starts as many torch and tokenizer threads as the machine has cores, and
    ``processes`` of them oversubscribe it.
    """
    if torch.cuda.is_available():
        return model.start_multi_process_pool(target_devices=[f"cuda:{i}" for i in range(min(processes, torch.cuda.device_count()))])
    with _environment(worker_environment(processes)):
        return model.start_multi_process_pool(target_devices=["cpu"] * processes)


def worker_environment(processes: int, cores: int | None = None) -> dict[str, str]:
    """Variables a spawned CPU encoding worker reads at start: ``cores // processes`` threads (at least 1) each."""
    threads = str(max(1, (cores or os.cpu_count() or 1) // processes))
    return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "TOKENIZERS_PARALLELISM": "false"}


@contextlib.contextmanager
def _environment(variables: dict[str, str]):
    """Set ``variables`` in ``os.environ`` for the block (children started in it inherit them), then restore."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


EMBEDDING_DTYPES = ("float32", "float16")


@dataclass
class CachedEncoding:
    """Embeddings ``[N, dim]`` with the ids they belong to, and whether they came from cache."""

    ids: list[str]
    embeddings: np.ndarray
    cache_hit: bool
    cache_path: Path | None
    seconds: float


class EmbeddingCache:
    """Content-addressed store of corpus embeddings under ``root/embeddings``."""

    def __init__(self, root: Path | None = None):
        self.root = Path(root or default_cache_dir()) / "embeddings"

    def key(self, model_fp: str, ids: list[str], texts: list[str], kind: str, precision: str = "fp32",
            dtype: str = "float32") -> str:
        suffix = ("" if precision == "fp32" else f"-{precision}") + ("" if dtype == "float32" else "-f16")
        return f"{kind}-{model_fp[:16]}-{texts_fingerprint(ids, texts)[:16]}{suffix}"

    def load(self, key: str, ids: list[str]) -> np.ndarray | None:
        vectors, meta = self.root / f"{key}.npy", self.root / f"{key}.json"
        if not (vectors.is_file() and meta.is_file()):
            return None
        try:
            stored_ids = json.loads(meta.read_text())["ids"]
            array = np.load(vectors, allow_pickle=False)
        except Exception:  # noqa: BLE001 - 0-byte, truncated, foreign or unreadable: a miss, recomputed, never trusted
            return None
        if (stored_ids != ids or not isinstance(array, np.ndarray) or array.ndim != 2 or array.shape[0] != len(ids)
                or array.dtype.kind != "f" or (ids and array.shape[1] == 0)):
            return None
        return array

    def save(self, key: str, ids: list[str], embeddings: np.ndarray, info: dict) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{key}.npy"
        with atomic_write(path, mode="wb") as handle:
            np.save(handle, embeddings, allow_pickle=False)
        with atomic_write(self.root / f"{key}.json") as handle:
            json.dump({"ids": ids, **info}, handle)
        return path


def encode_with_cache(
    model, ids: list[str], texts: list[str], kind: str = "document", batch_size: int = 64,
    cache: EmbeddingCache | None = None, progress: bool = True, model_fp: str | None = None, precision: str = "fp32",
    dtype: str = "float32", processes: int = 1,
) -> CachedEncoding:
    """Encode ``texts`` or reuse cached vectors for exactly this model and these texts.

    ``dtype="float16"`` keeps (and caches) the vectors in half precision: half the memory and disk
    for a corpus of millions; search converts them chunk by chunk."""
    if dtype not in EMBEDDING_DTYPES:
        raise ValueError(f"embedding dtype must be one of {', '.join(EMBEDDING_DTYPES)}, got {dtype!r}")
    start = time.perf_counter()

    def encoded() -> np.ndarray:
        vectors = encode_texts(model, texts, kind, batch_size, progress, precision=precision, processes=processes)
        return vectors.astype(np.float16) if dtype == "float16" else vectors

    if cache is None:
        return CachedEncoding(ids, encoded(), False, None, time.perf_counter() - start)
    model_fp = model_fp or model_fingerprint(model)
    key = cache.key(model_fp, ids, texts, kind, precision, dtype)
    cached = cache.load(key, ids)
    if cached is not None:
        return CachedEncoding(ids, cached, True, cache.root / f"{key}.npy", time.perf_counter() - start)
    embeddings = encoded()
    path = cache.save(key, ids, embeddings, {"model_fingerprint": model_fp, "kind": kind, "count": len(ids), "precision": precision})
    return CachedEncoding(ids, embeddings, False, path, time.perf_counter() - start)
