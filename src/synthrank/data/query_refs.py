"""Query references: ``queries.ref.json`` files that name queries by source file and ids.

``synthrank generate export`` writes one instead of copying real query text into a synthetic
set. These readers resolve it, and :func:`load_any_queries` reads queries from whatever a user
points at (a ``.jsonl``, a ``.tsv``, a ref file, or a BEIR folder with either).
"""

from __future__ import annotations

from synthrank.data.named import data_root, missing_hint

import json
from pathlib import Path

from synthrank.data.beir import load_queries, queries_file_for_split
from synthrank.data.errors import DataFormatError
from synthrank.data.records import Query

QUERIES_REF = "queries.ref.json"


def is_queries_source(path: Path) -> bool:
    """What a ``queries.ref.json`` may point at: a ``queries*.jsonl`` / ``*.tsv`` file, or a folder with one."""
    path = Path(path)
    if path.is_dir():
        return any(path.glob("queries*.jsonl"))
    name = path.name.lower()
    return path.is_file() and ((name.startswith("queries") and name.endswith(".jsonl")) or name.endswith(".tsv"))


def load_queries_ref(path: Path, split: str | None = None) -> dict[str, Query]:
    """Queries named by a ``queries.ref.json`` of ``synthrank generate export``.

    The file is ``{"source": <queries path>, "ids": [...], "split": <optional>}``. A
    relative ``source`` is looked up next to the ref file first, then in the current folder, then
    under the data root (the exporter records a source under the data root relative to it, any
    other as given on its command line). ``split`` picks
    ``queries_<split>.jsonl`` when ``source`` is a BEIR folder (the ref's own ``split`` key
    wins). Only the listed ids are returned; an id missing from the source is an error.
    """
    path = Path(path)
    try:
        ref = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DataFormatError(path, 0, "-", "file not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataFormatError(path, getattr(err, "lineno", 0), "-", f"not valid JSON ({err})") from None
    if not isinstance(ref, dict) or not isinstance(ref.get("source"), str) or not ref["source"].strip():
        raise DataFormatError(path, 0, "source", "missing: expected the path of the queries file or BEIR folder")
    source = Path(ref["source"]).expanduser()
    root = data_root()
    looked = [source] if source.is_absolute() else [path.parent / source, Path.cwd() / source, *([root / source] if root else [])]
    found = next((p for p in looked if p.exists()), None)
    if found is None:
        where = " or ".join(str(p) for p in looked)
        raise DataFormatError(path, 0, "source", f"queries source {ref['source']!r} not found (looked for {where}); "
                              "fix the path in this file or give the source's `queries` explicitly")
    if not is_queries_source(found):  # a ref file must not make us open (and quote) any file on the machine
        raise DataFormatError(path, 0, "source", f"{ref['source']!r} is not a queries file (queries*.jsonl, *.tsv) "
                              "or a BEIR folder; refusing to read it")
    queries = load_queries(found, split=ref.get("split") or split)
    ids = ref.get("ids")
    if ids is None:
        return queries
    if not isinstance(ids, list):
        raise DataFormatError(path, 0, "ids", "must be a list of query ids")
    ids = [str(i) for i in ids]
    missing = [i for i in ids if i not in queries]
    if missing:
        raise DataFormatError(path, 0, "ids", f"{len(missing)} of {len(ids)} query ids are not in {found} "
                              f"(first: {missing[0]!r})")
    return {i: queries[i] for i in ids}


def load_any_queries(path: Path, split: str | None = None) -> dict[str, Query]:
    """Queries from a ``.jsonl``, ``.tsv``, ``queries.ref.json``, or a BEIR folder.

    A folder uses ``queries_<split>.jsonl`` / ``queries.jsonl`` when present, else its
    ``queries.ref.json``. A missing path raises DataFormatError.
    """
    path = Path(path)
    if not path.exists():
        raise DataFormatError(path, 0, "-", "no such file or folder" + missing_hint(path))
    if path.is_file():
        return load_queries_ref(path, split) if path.name.endswith(".json") else load_queries(path)
    if queries_file_for_split(path, split).is_file():
        return load_queries(path, split=split)
    if (path / QUERIES_REF).is_file():
        return load_queries_ref(path / QUERIES_REF, split)
    raise DataFormatError(path / "queries.jsonl", 0, "-", f"file not found (nor {QUERIES_REF})")


def load_split_queries(folder: Path, split: str | None) -> tuple[dict[str, Query], str]:
    """The queries of one split of a BEIR folder, and the split used. ``split=None`` means ``train``.

    A split is ``queries_<split>.jsonl`` when it exists, else the queries of ``queries.jsonl``
    judged in ``qrels/<split>.tsv`` (one queries file shared by several splits, as in NFCorpus).
    Defaulting to ``train`` matters: BEIR's ``queries.jsonl`` usually holds the *test* queries
    (SciFact's 300 test claims), which must never become training queries unnoticed. A folder
    with neither file for the split is a DataFormatError that names both.
    """
    from synthrank.data.beir import load_qrels_tsv, load_queries_jsonl

    folder = Path(folder)
    chosen = split or "train"
    own = folder / f"queries_{chosen}.jsonl"
    if own.is_file():
        return load_queries_jsonl(own), chosen
    qrels = folder / "qrels" / f"{chosen}.tsv"
    if qrels.is_file() and (folder / "queries.jsonl").is_file():
        queries = load_queries_jsonl(folder / "queries.jsonl")
        judged = load_qrels_tsv(qrels, query_ids=set(queries))
        return {qid: q for qid, q in queries.items() if qid in judged}, chosen
    hint = "" if split else " (the default split: BEIR's queries.jsonl is usually the test queries; pass a split explicitly)"
    raise DataFormatError(folder, 0, "split", f"no {own.name} and no qrels/{chosen}.tsv for split {chosen!r}{hint}")


def default_split(queries: Path, split: str | None) -> str | None:
    """``split`` as given, else ``train`` for a BEIR queries folder (see :func:`load_split_queries`), else None."""
    return split or ("train" if is_beir_queries_folder(Path(queries)) else None)


def is_beir_queries_folder(path: Path) -> bool:
    """A folder holding BEIR queries files (not a synthetic export, which points at its queries)."""
    path = Path(path)
    return path.is_dir() and (any(path.glob("queries*.jsonl")) and not (path / QUERIES_REF).is_file())
