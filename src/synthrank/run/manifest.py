"""Stage manifests: what a stage ran with, so an unchanged stage is skipped and a changed one reruns.

Every stage of ``synthrank run`` writes ``<run_dir>/<stage>/manifest.json``::

    {"stage": "train", "status": "running" | "done" | "failed", "fingerprint": "<sha256>",
     "config": {...the stage's section...}, "inputs": {"<path>": "<content sha256>", ...},
     "versions": {"synthrank": ..., "torch": ..., ...}, "machine": {"cpu": ..., "gpu": ..., "platform": ...},
     "started": ISO time, "finished": ISO time,
     "seconds": float, "outputs": {...}, "summary": {...}, "error": "..."}

The fingerprint hashes the stage name, its config section, the *content* of every input path
(files, or every file of a folder) and the synthrank version. A stage whose manifest says
``done`` with the same fingerprint is skipped. Content hashes of big files are cached in
``<run_dir>/.hash-cache.json`` by (path, size, mtime), so a 1 GB corpus is read once.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path

from synthrank.data.jsonl import atomic_write

IGNORED_NAMES = {"store.sqlite", "store.sqlite-wal", "store.sqlite-shm", ".campaign.lock", "campaign.pid", "campaign.log"}
VERSIONED_PACKAGES = ("synthrank", "torch", "sentence-transformers", "transformers", "datasets", "xllamacpp", "bm25s",
                      "pytrec-eval-terrier", "faiss-cpu", "numpy")


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages a run depends on (None when absent), plus Python's."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    try:
        lines = Path("/proc/cpuinfo").read_text().splitlines()
        return next(line.split(":", 1)[1].strip() for line in lines if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def machine_info() -> dict[str, str | None]:
    """Where a stage ran: CPU model, the first CUDA device's name (None without one) and the platform.
    Scores of the same model differ slightly between machines (bf16 and fp32 kernels differ), so a grid
    page says when its cells ran on different ones."""
    gpu = None
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except Exception:  # noqa: BLE001 - a broken CUDA setup must not stop a manifest being written
        pass
    return {"cpu": cpu_model(), "gpu": gpu, "platform": platform.platform()}


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


class ContentHasher:
    """sha256 of files and folders, cached by (path, size, mtime_ns) in a JSON file."""

    def __init__(self, cache_file: Path | None = None):
        self.cache_file = cache_file
        self.cache: dict[str, list] = {}
        if cache_file is not None and cache_file.is_file():
            try:
                self.cache = json.loads(cache_file.read_text())
            except ValueError:
                self.cache = {}

    def file(self, path: Path) -> str:
        stat = path.stat()
        key = str(path.resolve())
        hit = self.cache.get(key)
        if hit and hit[0] == stat.st_size and hit[1] == stat.st_mtime_ns:
            return hit[2]
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        self.cache[key] = [stat.st_size, stat.st_mtime_ns, digest.hexdigest()]
        return digest.hexdigest()

    def path(self, path: Path) -> str:
        """Hash of a file's bytes, or of a folder's (relative path, file hash) list; ``missing`` if absent."""
        path = Path(path)
        if path.is_file():
            return self.file(path)
        if not path.is_dir():
            return "missing"
        digest = hashlib.sha256()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            rel = child.relative_to(path)
            if child.name in IGNORED_NAMES or any(part.startswith(".") for part in rel.parts) or "checkpoints" in rel.parts:
                continue
            digest.update(f"{rel.as_posix()}\0{self.file(child)}\n".encode())
        return digest.hexdigest()

    def save(self) -> None:
        if self.cache_file is not None:
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(self.cache_file) as handle:
                json.dump(self.cache, handle)


def fingerprint(stage: str, config: dict, inputs: dict[str, str], version: str) -> str:
    """sha256 over the stage name, its config (canonical JSON), the input hashes and the version."""
    blob = json.dumps({"stage": stage, "config": config, "inputs": inputs, "version": version}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


def read_manifest(stage_dir: Path) -> dict | None:
    path = Path(stage_dir) / "manifest.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def write_manifest(stage_dir: Path, manifest: dict) -> None:
    stage_dir = Path(stage_dir)
    stage_dir.mkdir(parents=True, exist_ok=True)
    with atomic_write(stage_dir / "manifest.json") as handle:
        json.dump(manifest, handle, indent=1, default=str)


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0
