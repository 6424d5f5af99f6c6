"""Real documents of the target collection as style examples for the generator (``${style_example}``).

Grounding the generator in the collection it will be evaluated on (its register, its length) is
one of the levers of issue 18. A style example is a real document drawn deterministically per
query from a BEIR folder's corpus, **never a judged document**: every document named in any
``qrels/*.tsv`` of the folder is left out of the pool, so the judged positives of evaluation
queries (and of training queries) can never reach the generator.

Contract: :func:`load_style_pool` returns the pool (sorted by id) and a fingerprint of it, which
goes into the generation key (a different pool is a different generation); :func:`style_example_for`
maps a query id to one document's text, cut to ``max_words`` words.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from synthrank.data import DataFormatError

#: Used when a prompt asks for ``${style_example}`` but the job has no style corpus.
GENERIC_STYLE = ("The tomato is a flowering plant of the nightshade family, grown for its edible fruit. It was brought to "
                 "Europe from South America in the sixteenth century and is now among the most widely grown crops.")


@dataclass(frozen=True)
class StylePool:
    """Unjudged documents of a corpus, as ``(doc id, "title. text")`` sorted by id."""

    documents: tuple[tuple[str, str], ...]
    fingerprint: str  # 16 hex digits over ids and texts
    max_words: int = 120

    def example_for(self, query_id: str) -> str:
        """One document's text (at most ``max_words`` words), the same for every level of a query."""
        index = int(hashlib.sha256(f"style|{query_id}".encode()).hexdigest()[:8], 16) % len(self.documents)
        words = self.documents[index][1].split()
        text = " ".join(words[: self.max_words])
        return text + (" ..." if len(words) > self.max_words else "")


def load_style_pool(folder: Path, max_words: int = 120) -> StylePool:
    """The style pool of a BEIR folder: its corpus minus every document judged in any qrels split."""
    from synthrank.data.beir import iter_corpus, load_qrels_tsv, qrels_splits

    folder = Path(folder)
    corpus_path = folder / "corpus.jsonl"
    if not corpus_path.is_file():
        raise DataFormatError(corpus_path, 0, "style_corpus", "a style corpus is a BEIR folder with a corpus.jsonl")
    judged: set[str] = set()
    for split in qrels_splits(folder):
        for docs in load_qrels_tsv(folder / "qrels" / f"{split}.tsv").values():
            judged.update(docs)
    documents = []
    for doc in iter_corpus(corpus_path):
        if doc.id in judged:
            continue
        text = " ".join(f"{doc.title}. {doc.text}".split()) if doc.title else " ".join(doc.text.split())
        if len(text.split()) >= 20:  # a title-only or empty document shows no register
            documents.append((doc.id, text))
    if not documents:
        raise DataFormatError(corpus_path, 0, "style_corpus", "no unjudged document of 20 words or more to show as a style example")
    documents.sort()
    digest = hashlib.sha256(str(max_words).encode())
    for doc_id, text in documents:
        digest.update(f"{doc_id}\0{text}\0".encode("utf-8"))
    return StylePool(tuple(documents), digest.hexdigest()[:16], max_words)
