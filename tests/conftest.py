"""Shared fixtures: tiny BEIR folders built in tmp_path, and the optional ../shared data."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SYNTHRANK_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The real collections in ../shared/data; tests using them skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not available at {SHARED_DATA}")
    return SHARED_DATA


def write_beir(folder: Path, corpus: list[dict] | str, queries: list[dict] | str, qrels: dict[str, str] | None = None) -> Path:
    """Write a BEIR folder; list arguments become JSONL, strings are written verbatim."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in (("corpus.jsonl", corpus), ("queries.jsonl", queries)):
        text = content if isinstance(content, str) else "".join(json.dumps(row) + "\n" for row in content)
        (folder / name).write_text(text, encoding="utf-8")
    (folder / "qrels").mkdir(exist_ok=True)
    for split, text in (qrels or {}).items():
        (folder / "qrels" / f"{split}.tsv").write_text(text, encoding="utf-8")
    return folder


@pytest.fixture
def tiny_beir(tmp_path: Path) -> Path:
    """A valid 6-document, 2-query BEIR folder with graded qrels."""
    corpus = [
        {"_id": "d1", "title": "Cats", "text": "Cats are small domesticated felines that purr."},
        {"_id": "d2", "title": "Dogs", "text": "Dogs are loyal domesticated canines that bark."},
        {"_id": "d3", "title": "", "text": "The stock market fell sharply on Monday."},
        {"_id": "d4", "title": "Felines", "text": "Lions and tigers are large wild felines."},
        {"_id": "d5", "title": "Bonds", "text": "Government bonds rallied as the stock market dropped."},
        {"_id": "d6", "title": "", "text": "A recipe for tomato soup with basil."},
    ]
    queries = [{"_id": "q1", "text": "domestic cats that purr"}, {"_id": "q2", "text": "why did the stock market fall"}]
    qrels = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td4\t1\nq2\td3\t2\nq2\td5\t1\nq2\td6\t0\n"
    return write_beir(tmp_path / "tiny", corpus, queries, {"test": qrels})
