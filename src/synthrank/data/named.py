"""Data sets by name, resolved in one place to a local BEIR folder.

A data set reference is accepted wherever a BEIR folder is (CLI, run configs, Python):

- a **local path**: a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/SPLIT.tsv``); a
  relative path that exists neither next to the config nor in the current folder is looked up
  under the **data root** (``--data-root``, ``$SYNTHRANK_DATA``): ``scifact`` -> ``$SYNTHRANK_DATA/scifact``;
- ``embedded`` / ``embedded:NAME``: a collection shipped in the package (MEDLINE);
- ``beir:NAME``: the public BEIR zip (``BEIR_BASE_URL/NAME.zip``; ``$SYNTHRANK_BEIR_URL`` replaces
  the base), downloaded once into the cache;
- ``hf:REPO[:QRELS_CONFIG]``: a Hugging Face dataset in the BEIR layout through ``datasets``
  (``mteb/scifact``: configs ``corpus``, ``queries`` and ``default`` for the qrels; ``BeIR/scifact``:
  ``corpus``, ``queries`` and the qrels in ``BeIR/scifact-qrels``); REPO may be a local folder
  laid out like the hub repository;
- ``irds:ID``: an ``ir_datasets`` id (``beir/scifact/test``; needs ``pip install synthrank[irds]``);
- an ``http(s)://`` URL of a BEIR-layout zip (what ``beir:NAME`` resolves to).

Downloads are resumable (an interrupted ``.partial`` file continues with an HTTP Range request),
checked against a sha256 when one is known (``KNOWN_SHA256`` or ``sha256=``), unpacked into a
temporary folder, checked for the BEIR layout and only then moved into place: a failure leaves
no half-written cache entry. Each entry holds ``source.json`` (what it came from, the zip's
sha256). The cache root is ``$SYNTHRANK_CACHE`` (else ``~/.cache/synthrank``) + ``/datasets``.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import zipfile
from pathlib import Path

from synthrank.data.errors import DataFormatError

BEIR_BASE_URL = "https://public.ukp.informatik.tu-darmstadt.de/thakur/BEIR/datasets"
SCHEMES = ("beir", "hf", "irds")
#: sha256 of published zips we have verified ourselves (none yet: BEIR publishes md5 sums only for some).
KNOWN_SHA256: dict[str, str] = {}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def data_root() -> Path | None:
    """The data root (``$SYNTHRANK_DATA``), or None."""
    value = os.environ.get("SYNTHRANK_DATA")
    return Path(value).expanduser() if value else None


def relative_to_data_root(path: Path | str) -> str:
    """``path`` relative to the data root when it lies under it (what an export records, so another clone
    with another data root reads it), else ``path`` as given."""
    root = data_root()
    if root is not None:
        try:
            return Path(path).expanduser().resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


def set_data_root(path: Path | str | None) -> None:
    """Set the data root for this process and the processes it starts (``--data-root``)."""
    if path is not None:
        os.environ["SYNTHRANK_DATA"] = str(Path(path).expanduser().resolve())


def missing_hint(path: Path | str) -> str:
    """What to say when a relative data path is not found: where it was looked for and how to name it."""
    path = Path(path)
    if path.is_absolute():
        return ""
    root = data_root()
    where = f"not under the data root {root} either" if root else "no data root is set (--data-root or $SYNTHRANK_DATA)"
    return f" ({where}; or name a public set, e.g. beir:{path.name})"


def datasets_cache() -> Path:
    base = os.environ.get("SYNTHRANK_CACHE") or os.path.join(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache", "synthrank")
    return Path(base) / "datasets"


def is_named(ref: str | Path) -> bool:
    """Whether ``ref`` is a data set name (``beir:``, ``hf:``, ``irds:``, a URL) rather than a path."""
    text = str(ref)
    return (text == "embedded" or (":" in text and text.split(":", 1)[0] in (*SCHEMES, "embedded"))
            or text.startswith(("http:/", "https:/")))


def resolve_dataset(ref: str | Path, progress: bool = True) -> Path:
    """The local BEIR folder of a data set name, fetched into the cache on first use.

    ``ref`` must satisfy :func:`is_named`; paths are resolved by ``config_io.resolve_path``.
    Raises DataFormatError (``ref: what is wrong``) for an unknown scheme or name, an offline
    machine, a corrupt download or a folder that is not in the BEIR layout."""
    text = re.sub(r"^(https?):/(?!/)", r"\1://", str(ref))  # a URL that went through Path() lost a slash
    if text.startswith(("http://", "https://")):
        return fetch_zip(text, _url_entry(text), progress=progress)
    scheme, _, name = text.partition(":")
    if scheme == "embedded":
        from synthrank.data.embedded import EMBEDDED_DATASETS, embedded_dataset_path

        if (name or "medline") not in EMBEDDED_DATASETS:
            raise DataFormatError(text, 0, "name", f"no embedded collection {name!r}; the package ships {', '.join(EMBEDDED_DATASETS)}")
        return embedded_dataset_path(name or "medline")
    if not name:
        raise DataFormatError(text, 0, "name", f"{scheme}: needs a name after the colon")
    if scheme == "beir":
        archive, _, inner = name.partition("/")  # cqadupstack/android: a sub-collection of one zip
        if not _NAME.match(archive) or (inner and not _NAME.match(inner)):
            raise DataFormatError(text, 0, "name", "a BEIR name is letters, digits, '.', '_', '-' (e.g. beir:scifact, "
                                                   "beir:cqadupstack/android)")
        base = os.environ.get("SYNTHRANK_BEIR_URL", BEIR_BASE_URL).rstrip("/")
        folder = fetch_zip(f"{base}/{archive}.zip", datasets_cache() / "beir" / archive, KNOWN_SHA256.get(archive), progress)
        if inner and not (folder / inner).is_dir():
            raise DataFormatError(text, 0, "name", f"{archive} has no sub-collection {inner!r}")
        return folder / inner if inner else folder
    if scheme == "hf":
        return _from_hub(name)
    if scheme == "irds":
        return _from_ir_datasets(name)
    raise DataFormatError(text, 0, "scheme", f"unknown data set scheme {scheme!r}; known: {', '.join(SCHEMES)}")


def _url_entry(url: str) -> Path:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(url.split("?", 1)[0]).stem)[:60] or "data"
    return datasets_cache() / "url" / f"{stem}-{hashlib.sha256(url.encode()).hexdigest()[:10]}"


# --- zips ----------------------------------------------------------------------------------------


def fetch_zip(url: str, entry: Path, sha256: str | None = None, progress: bool = True) -> Path:
    """``entry`` (a BEIR folder), downloading and unpacking ``url`` first unless it is already there."""
    if (entry / "source.json").is_file():
        return entry
    entry.parent.mkdir(parents=True, exist_ok=True)
    partial = entry.with_name(entry.name + ".zip.partial")
    digest = _download(url, partial, progress)
    if sha256 and digest != sha256.lower():
        partial.unlink(missing_ok=True)
        raise DataFormatError(url, 0, "sha256", f"checksum mismatch: got {digest}, expected {sha256} (the partial file was removed)")
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        try:
            with zipfile.ZipFile(partial) as archive:
                _safe_extract(archive, staging, url)
        except zipfile.BadZipFile:
            partial.unlink(missing_ok=True)
            raise DataFormatError(url, 0, "zip", "not a valid zip file (corrupt or truncated download; removed, run again)") from None
        folder = _beir_folder_in(staging, url)
        (folder / "source.json").write_text(json.dumps({"url": _redacted(url), "sha256": digest}, indent=1), encoding="utf-8")
        if entry.exists():
            shutil.rmtree(entry)
        folder.rename(entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    partial.unlink(missing_ok=True)
    return entry


def _download(url: str, partial: Path, progress: bool) -> str:
    """Download ``url`` into ``partial`` (continuing a previous partial file); return the sha256 of the whole file."""
    import httpx
    from tqdm.auto import tqdm

    have = partial.stat().st_size if partial.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    try:
        with httpx.stream("GET", url, headers=headers, follow_redirects=True, timeout=httpx.Timeout(60.0)) as response:
            if response.status_code == 416:  # the partial file is already complete
                pass
            elif response.status_code >= 400:
                raise DataFormatError(_redacted(url), 0, "download", f"HTTP {response.status_code}")
            else:
                append = have and response.status_code == 206
                total = int(response.headers.get("content-length") or 0) + (have if append else 0)
                with open(partial, "ab" if append else "wb") as handle, tqdm(
                        total=total or None, initial=have if append else 0, unit="B", unit_scale=True,
                        desc=f"download {Path(url).name}", disable=None if progress else True) as bar:
                    for chunk in response.iter_bytes(1 << 20):
                        handle.write(chunk)
                        bar.update(len(chunk))
    except httpx.HTTPError as err:
        raise DataFormatError(_redacted(url), 0, "download", f"cannot download ({type(err).__name__}: offline or unreachable); "
                              "download the zip elsewhere and pass its unpacked folder instead") from None
    sha = hashlib.sha256()
    with open(partial, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            sha.update(block)
    return sha.hexdigest()


def _safe_extract(archive: zipfile.ZipFile, into: Path, url: str) -> None:
    root = into.resolve()
    for member in archive.infolist():
        target = (into / member.filename).resolve()
        if not target.is_relative_to(root):
            raise DataFormatError(url, 0, member.filename, "zip entry escapes the folder (refused)")
    archive.extractall(into)


def _beir_folder_in(staging: Path, source: str) -> Path:
    """The folder of the unpacked archive that holds ``corpus.jsonl`` / ``queries.jsonl`` (top level or one
    down), or whose sub-folders do (CQADupStack: one collection per forum)."""
    for folder in [staging, *sorted(p for p in staging.iterdir() if p.is_dir())]:
        if (folder / "corpus.jsonl").is_file() or (folder / "queries.jsonl").is_file():
            return folder
        if folder is not staging and any((sub / "corpus.jsonl").is_file() for sub in folder.iterdir() if sub.is_dir()):
            return folder
    raise DataFormatError(_redacted(source), 0, "layout", "no corpus.jsonl or queries.jsonl in the archive (not a BEIR-layout zip)")


def _redacted(url: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password or parts.username:
        parts = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))
    return urlunsplit(parts)


# --- Hugging Face and ir_datasets ------------------------------------------------------------------


def _write_folder(entry: Path, source: dict, corpus, queries, qrels: dict[str, list[tuple[str, str, int]]]) -> Path:
    """Write a BEIR folder atomically (a temporary sibling, renamed when complete)."""
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        with open(staging / "corpus.jsonl", "w", encoding="utf-8") as handle:
            for doc_id, title, text in corpus:
                handle.write(json.dumps({"_id": str(doc_id), "title": title or "", "text": text or ""}, ensure_ascii=False) + "\n")
        with open(staging / "queries.jsonl", "w", encoding="utf-8") as handle:
            for query_id, text in queries:
                handle.write(json.dumps({"_id": str(query_id), "text": text}, ensure_ascii=False) + "\n")
        (staging / "qrels").mkdir()
        for split, rows in qrels.items():
            with open(staging / "qrels" / f"{split}.tsv", "w", encoding="utf-8") as handle:
                handle.write("query-id\tcorpus-id\tscore\n")
                handle.writelines(f"{q}\t{d}\t{int(s)}\n" for q, d, s in rows)
        (staging / "source.json").write_text(json.dumps(source, indent=1), encoding="utf-8")
        if entry.exists():
            shutil.rmtree(entry)
        staging.rename(entry)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry


def _from_hub(name: str) -> Path:
    repo, _, qrels_config = name.partition(":")
    entry = datasets_cache() / "hf" / (re.sub(r"[^A-Za-z0-9._-]+", "__", repo.strip("/")) + (f"__{qrels_config}" if qrels_config else ""))
    if (entry / "source.json").is_file():
        return entry
    try:
        import datasets
    except ImportError:  # pragma: no cover - a dependency
        raise DataFormatError(f"hf:{name}", 0, "datasets", "the datasets package is not installed") from None

    def load(path: str, config: str):
        try:
            loaded = datasets.load_dataset(path, config)
        except Exception as err:  # noqa: BLE001 - datasets raises many kinds; one line for the user
            raise DataFormatError(f"hf:{name}", 0, config, f"cannot load {path!r} config {config!r} "
                                  f"({type(err).__name__}: {str(err).splitlines()[0][:160] if str(err) else ''})") from None
        return loaded

    corpus_splits, query_splits = load(repo, "corpus"), load(repo, "queries")
    corpus = next(iter(corpus_splits.values()))
    queries = next(iter(query_splits.values()))
    try:
        qrels_sets = load(repo, qrels_config or "default")
    except DataFormatError:
        if qrels_config:
            raise
        qrels_sets = load(f"{repo.rstrip('/')}-qrels", "default")  # BeIR/NAME keeps its qrels in BeIR/NAME-qrels
    for column in ("_id", "text"):
        if column not in corpus.column_names or column not in queries.column_names:
            raise DataFormatError(f"hf:{name}", 0, column, f"the corpus and queries need the columns _id, text (found "
                                  f"{corpus.column_names} and {queries.column_names})")
    qrels = {}
    for split, rows in qrels_sets.items():
        if not {"query-id", "corpus-id", "score"} <= set(rows.column_names):
            raise DataFormatError(f"hf:{name}", 0, split, f"qrels need the columns query-id, corpus-id, score (found {rows.column_names})")
        qrels[split] = [(r["query-id"], r["corpus-id"], r["score"]) for r in rows]
    return _write_folder(entry, {"hf": name},
                         ((r["_id"], r.get("title", ""), r["text"]) for r in corpus),
                         ((r["_id"], r["text"]) for r in queries), qrels)


def _from_ir_datasets(name: str) -> Path:
    entry = datasets_cache() / "irds" / re.sub(r"[^A-Za-z0-9._-]+", "__", name)
    if (entry / "source.json").is_file():
        return entry
    try:
        import ir_datasets
    except ImportError:
        raise DataFormatError(f"irds:{name}", 0, "ir_datasets", "not installed: pip install 'synthrank[irds]'") from None
    try:
        dataset = ir_datasets.load(name)
    except KeyError:
        raise DataFormatError(f"irds:{name}", 0, "id", "unknown ir_datasets id (see https://ir-datasets.com)") from None
    split = name.rsplit("/", 1)[-1] if name.rsplit("/", 1)[-1] in ("train", "dev", "test", "validation") else "test"
    try:
        docs = ((d.doc_id, getattr(d, "title", ""), getattr(d, "text", "") or getattr(d, "body", "")) for d in dataset.docs_iter())
        queries = [(q.query_id, getattr(q, "text", "") or getattr(q, "title", "")) for q in dataset.queries_iter()]
        qrels = {split: [(r.query_id, r.doc_id, r.relevance) for r in dataset.qrels_iter()] if dataset.has_qrels() else []}
        return _write_folder(entry, {"irds": name}, docs, queries, qrels)
    except (OSError, IOError) as err:
        raise DataFormatError(f"irds:{name}", 0, "download", f"cannot read it ({type(err).__name__}: offline?)") from None


__all__ = ["BEIR_BASE_URL", "SCHEMES", "data_root", "datasets_cache", "fetch_zip", "is_named", "missing_hint", "resolve_dataset", "set_data_root"]
