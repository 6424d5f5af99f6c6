"""Quality filters for generated passages; every rejection is counted with its reason.

Reasons, checked in this order for each passage:

* ``empty`` - nothing but whitespace;
* ``too_short`` / ``too_long`` - fewer than ``min_words`` or more than ``max_words`` words;
* ``refusal_or_meta`` - a refusal ("As an AI ...", "I cannot ...") or meta text about the task
  ("Here is a passage", "relevance level", "this passage");
* ``copies_query`` - the passage is the query, or mostly the query's words (token containment
  >= ``query_copy`` with few extra words);
* ``exact_duplicate`` - same normalized text as an earlier passage of the same query;
* ``near_duplicate`` - word-3-gram Jaccard similarity >= ``near_dup`` with an earlier kept
  passage of the same query;
* ``cross_query_duplicate`` (only with ``cross_query_dedupe``) - the same normalized text as, or a
  near duplicate of, a kept passage of an *earlier query* (queries in file order): one passage
  must not teach two queries.

The thresholds are :class:`FilterSettings`, the ``filters:`` section of a generate job
(``--filters.min-words`` etc.).

Passages are compared in (level descending, index) order, so a duplicate is always the later one.
"""

from __future__ import annotations

import re
from collections import Counter
from pydantic import BaseModel, ConfigDict, Field

REASONS = ("empty", "too_short", "too_long", "refusal_or_meta", "copies_query", "exact_duplicate", "near_duplicate")
CROSS_QUERY = "cross_query_duplicate"

_META = re.compile(
    r"\bas an ai\b|\bi(?:'m| am) (?:sorry|unable)\b|\bi can(?:not|'t) (?:help|provide|write|assist)\b|"
    r"\blanguage model\b|^\s*(?:here is|here's|sure[,!]|certainly[,!])|\brelevance level\b|"
    r"\bthis passage\b|\bthe query\b|\bpassage (?:above|below)\b",
    re.I,
)
_WORD = re.compile(r"\w+", re.U)


class FilterSettings(BaseModel):
    """Thresholds of the quality filters (words are ``\\w+`` runs)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    min_words: int = Field(15, ge=0, description="Passages with fewer words are dropped (too_short).")
    max_words: int = Field(300, ge=1, description="Passages with more words are dropped (too_long).")
    query_copy: float = Field(0.9, ge=0, le=1, description="Share of the query's words above which a passage with few "
                                                           "other words copies the query (copies_query).")
    near_dup: float = Field(0.7, ge=0, le=1, description="Word-3-gram Jaccard similarity at which a passage is a near "
                                                         "duplicate of an earlier kept one.")
    cross_query_dedupe: bool = Field(False, description="Also drop passages duplicating a kept passage of an earlier "
                                                        "query (cross_query_duplicate).")


def words(text: str) -> list[str]:
    """Lower-cased word tokens."""
    return _WORD.findall(text.lower())


def _shingles(tokens: list[str], k: int = 3) -> set[tuple[str, ...]]:
    if len(tokens) < k:
        return {tuple(tokens)}
    return {tuple(tokens[i:i + k]) for i in range(len(tokens) - k + 1)}


def single_reason(passage: str | None, query: str, settings: FilterSettings = FilterSettings()) -> str | None:
    """The reason a passage fails on its own (no comparison with others), or None."""
    if passage is None or not passage.strip():
        return "empty"
    tokens = words(passage)
    if len(tokens) < settings.min_words:
        return "too_short"
    if len(tokens) > settings.max_words:
        return "too_long"
    if _META.search(passage):
        return "refusal_or_meta"
    q = set(words(query))
    if q and tokens:
        extra = [t for t in tokens if t not in q]
        if " ".join(tokens) == " ".join(words(query)) or (
            len(q & set(tokens)) / len(q) >= settings.query_copy and len(extra) < len(q)):
            return "copies_query"
    return None


def filter_query_passages(query: str, passages: list[tuple[object, str | None]],
                          settings: FilterSettings = FilterSettings()) -> dict[object, str | None]:
    """Filter the passages of one query: ``[(key, text)]`` in priority order -> ``{key: reason or None}``."""
    out: dict[object, str | None] = {}
    kept_norm: set[str] = set()
    kept_shingles: list[set] = []
    for key, text in passages:
        reason = single_reason(text, query, settings)
        if reason is None:
            tokens = words(text or "")
            norm = " ".join(tokens)
            shingles = _shingles(tokens)
            if norm in kept_norm:
                reason = "exact_duplicate"
            elif any(len(shingles & s) / max(1, len(shingles | s)) >= settings.near_dup for s in kept_shingles):
                reason = "near_duplicate"
            else:
                kept_norm.add(norm)
                kept_shingles.append(shingles)
        out[key] = reason
    return out


class CrossQueryIndex:
    """Kept passages of the queries seen so far: exact texts and word-3-gram shingles (inverted index)."""

    def __init__(self, near_dup: float):
        self.near_dup = near_dup
        self.exact: set[str] = set()
        self.shingles: list[set] = []
        self.by_shingle: dict[tuple, list[int]] = {}

    def duplicates(self, text: str) -> bool:
        tokens = words(text)
        if " ".join(tokens) in self.exact:
            return True
        mine = _shingles(tokens)
        shared = Counter(i for sh in mine for i in self.by_shingle.get(sh, ()))
        return any(n / max(1, len(mine | self.shingles[i])) >= self.near_dup for i, n in shared.items())

    def add(self, text: str) -> None:
        tokens = words(text)
        self.exact.add(" ".join(tokens))
        index = len(self.shingles)
        self.shingles.append(_shingles(tokens))
        for sh in self.shingles[-1]:
            self.by_shingle.setdefault(sh, []).append(index)


def count_reasons(reasons: dict[object, str | None]) -> dict[str, int]:
    """``{"kept": k, reason: count, ...}`` with every reason present (0 when unused); ``cross_query_duplicate``
    only when it occurred (it exists only with ``cross_query_dedupe``)."""
    counts = Counter(r or "kept" for r in reasons.values())
    return {"kept": counts.get("kept", 0), **{r: counts.get(r, 0) for r in REASONS},
            **({CROSS_QUERY: counts[CROSS_QUERY]} if counts.get(CROSS_QUERY) else {})}
