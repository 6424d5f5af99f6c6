"""Relevance levels of the TREC Deep Learning scale, defined in our own words.

The generator asks an LLM for passages at these levels; the definitions below are inserted
into the prompts (``${definitions}``, ``${level_definition}``) so that every prompt file uses the
same wording. Unknown levels raise ``ValueError``.
"""

from __future__ import annotations

LEVEL_NAMES: dict[int, str] = {
    3: "perfectly relevant",
    2: "highly relevant",
    1: "related",
    0: "irrelevant",
}

LEVEL_DEFINITIONS: dict[int, str] = {
    3: (
        "The whole passage is about the query and states the complete answer directly, "
        "early and unambiguously; a reader needs nothing else."
    ),
    2: (
        "The passage addresses the query and contains part of the answer, or the answer "
        "hedged or buried among other details; a reader learns something useful but not everything."
    ),
    1: (
        "The passage is on the same subject as the query and mentions its main terms, "
        "but it does NOT answer the question: it discusses background, history or a neighbouring "
        "aspect instead."
    ),
    0: (
        "The passage is about a completely different subject, shares at most one ordinary word "
        "with the query, and would be useless to anyone asking it."
    ),
}

DEFAULT_LEVELS: tuple[int, ...] = (3, 2, 1, 0)


def check_levels(levels: list[int] | tuple[int, ...]) -> list[int]:
    """Return ``levels`` as a list with duplicates removed (order kept); raise ``ValueError`` for unknown ones."""
    out: list[int] = []
    for level in levels:
        if level not in LEVEL_NAMES:
            raise ValueError(f"unknown relevance level {level!r}; known levels: 3, 2, 1, 0")
        if level not in out:
            out.append(level)
    if not out:
        raise ValueError("at least one relevance level is required")
    return out


def definitions_text(levels: list[int] | tuple[int, ...]) -> str:
    """A bullet list ``- level N (name): definition`` for ``levels`` in the given order."""
    return "\n".join(f"- level {lv} ({LEVEL_NAMES[lv]}): {LEVEL_DEFINITIONS[lv]}" for lv in levels)
