"""BM25 retrieval with ``bm25s`` (Lucene scoring, English stop words, Snowball stemming).

Two ways to index a document's title and text (``fields``):
- ``"multifield"`` (default): title and text are indexed as separate fields and a query's
  score is the sum of its BM25 score on each, as Anserini/Pyserini's BEIR "multifield"
  indexes do; this is the setting behind the published BEIR BM25 figures (SciFact 0.665);
- ``"flat"``: ``title + " " + text`` as one field (Pyserini's BEIR "flat" setting).
k1=1.2, b=0.75 (Lucene/Elasticsearch defaults, as used by BEIR's BM25 baseline).
"""

from __future__ import annotations

import bm25s
import numpy as np
from tqdm.auto import tqdm

try:
    import Stemmer
except ImportError:  # pragma: no cover - PyStemmer is a declared dependency
    Stemmer = None

BM25_FIELDS = ("multifield", "flat")


class BM25Retriever:
    """Index documents once, then retrieve top-k ids and scores for many queries."""

    def __init__(self, k1: float = 1.2, b: float = 0.75, fields: str = "multifield", stopwords: str = "en", stem: bool = True):
        if fields not in BM25_FIELDS:
            raise ValueError(f"unknown BM25 fields {fields!r}; choose from {', '.join(BM25_FIELDS)}")
        self.stemmer = Stemmer.Stemmer("english") if (stem and Stemmer is not None) else None
        self.k1, self.b, self.fields, self.stopwords = k1, b, fields, stopwords
        self.indexes: list[bm25s.BM25] = []
        self.doc_ids: list[str] = []
        self.settings = {"k1": k1, "b": b, "fields": fields, "stopwords": stopwords, "stemmer": "snowball-english" if self.stemmer else None}

    def _tokenize(self, texts: list[str], as_strings: bool = False):
        return bm25s.tokenize(texts, stopwords=self.stopwords, stemmer=self.stemmer, show_progress=False, return_ids=not as_strings)

    def _build(self, texts: list[str], progress: bool) -> bm25s.BM25 | None:
        """An index of ``texts``, or None when they hold no term at all (only stop words or empty):
        such a field scores 0 for every query, and bm25s cannot index an empty vocabulary."""
        tokens = self._tokenize(texts)
        if not tokens.vocab:
            return None
        index = bm25s.BM25(k1=self.k1, b=self.b, method="lucene")
        index.index(tokens, show_progress=progress)
        return index

    def index(self, doc_ids: list[str], titles: list[str], texts: list[str], progress: bool = True) -> None:
        """Build the index; ``doc_ids[i]`` names the document with ``titles[i]`` and ``texts[i]``."""
        self.doc_ids = list(doc_ids)
        if self.fields == "flat" or not any(title.strip() for title in titles):  # no titles: one field
            built = [self._build([f"{t} {x}".strip() for t, x in zip(titles, texts)], progress)]
        else:
            built = [self._build(list(titles), progress), self._build(list(texts), progress)]
        self.indexes = [index for index in built if index is not None]

    def score_all(self, query: str) -> np.ndarray:
        """BM25 score of ``query`` against every indexed document, ``[n_docs]`` float32."""
        tokens = self._tokenize([query], as_strings=True)[0]
        total = np.zeros(len(self.doc_ids), dtype=np.float32)
        if not tokens or not self.indexes:  # only stop words, or a corpus without terms: nothing matches
            return total
        for index in self.indexes:
            total += index.get_scores(tokens)
        return total

    def retrieve(self, queries: list[str], k: int, progress: bool = True) -> tuple[list[list[str | None]], np.ndarray]:
        """Top-``k`` doc ids ``[Q][k']`` and scores ``[Q, k']`` with ``k' = min(k, n_docs)``.

        Documents are ordered by descending score; equal scores keep index order. As in Lucene,
        documents sharing no term with the query (score 0) are not retrieved: their slots hold
        ``None`` (a query of stop words only retrieves nothing).
        """
        k = min(k, len(self.doc_ids))
        all_ids, all_scores = [], np.zeros((len(queries), k), dtype=np.float32)
        for row, query in enumerate(tqdm(queries, desc="bm25 search", unit="query", disable=not progress)):
            scores = self.score_all(query)
            candidates = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
            ordered = candidates[np.lexsort((candidates, -scores[candidates]))]
            all_ids.append([self.doc_ids[i] if scores[i] > 0 else None for i in ordered])
            all_scores[row] = scores[ordered]
        return all_ids, all_scores
