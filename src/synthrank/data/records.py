"""Typed records for corpus documents, queries, relevance judgments and runs.

These are the only shapes that cross module boundaries. Ids are always strings (BEIR files
use both ``"12"`` and ``12``; we normalise to ``"12"``). A query's text must be non-empty after
stripping; a document's ``title`` and ``text`` may be empty (title-only and empty documents exist
in real collections).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator


def _coerce_id(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ValueError("must be a string or an integer")
    text = str(value).strip()
    if not text:
        raise ValueError("must not be empty")
    if any(ch.isspace() for ch in text):
        raise ValueError("must not contain whitespace (TREC run and qrels files are whitespace-separated)")
    return text


class _Record(BaseModel):
    """What documents and queries share: an ``_id`` (BEIR JSONL), a non-empty ``text``, extra keys in ``metadata``."""

    model_config = ConfigDict(populate_by_name=True, frozen=True)

    id: str = Field(alias="_id")
    text: str
    metadata: dict = Field(default_factory=dict)

    @field_validator("id", mode="before")
    @classmethod
    def _check_id(cls, value: object) -> str:
        return _coerce_id(value)

    @field_validator("text")
    @classmethod
    def _text_not_empty(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value


class Document(_Record):
    """One corpus passage, with an optional ``title``. Its ``text`` may be empty: BEIR corpora hold
    title-only documents and some collections entirely empty ones (Cranfield); they are encoded as
    they are, as BEIR does (``data stats`` counts them, loading warns once)."""

    title: str = ""

    @field_validator("text")
    @classmethod
    def _text_not_empty(cls, value: str) -> str:  # a document's text may be empty (title-only)
        return value

    @property
    def is_empty(self) -> bool:
        """Neither title nor text."""
        return not self.full_text.strip()

    @property
    def full_text(self) -> str:
        """The string a model encodes: ``title + " " + text`` (BEIR's convention)."""
        return f"{self.title} {self.text}".strip() if self.title else self.text


class Query(_Record):
    """One query."""


# In-memory forms used by evaluation and training: plain dicts, fast to build and to hand to
# pytrec_eval. qrels[query_id][doc_id] = level ; run[query_id][doc_id] = score.
Qrels = dict[str, dict[str, int]]
Run = dict[str, dict[str, float]]
