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

#: What to do, per level, in a per-level prompt (``${level_instruction}``). Level 0 names an
#: unrelated subject (``${distractor}``, drawn from ``prompts/distractors.txt`` per query): asked only
#: to "be irrelevant", small models keep writing about the query's topic.
LEVEL_INSTRUCTIONS: dict[int, str] = {
    3: "Start with the direct answer to the query, then add one or two supporting details.",
    2: ("Give only part of the answer - for example one factor, a rough figure or a special case - among other "
        "details, and leave the full answer out."),
    1: ("Write about the query's main subject - its background, history or a neighbouring aspect - but leave out "
        "anything that answers the question."),
    0: "Write about this unrelated subject instead: ${distractor}. Do not mention the query's subject at all.",
}

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
