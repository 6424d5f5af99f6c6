"""Relevance levels: the TREC Deep Learning scale in our own words, or any scale from a file.

The generator asks an LLM for passages at these levels; each level's name, definition and
instruction are inserted into the prompts (``${level_name}``, ``${definitions}``,
``${level_definition}``, ``${level_instruction}``) so that every prompt file uses the same wording.

A scale file (``levels_file``, YAML) defines any set of non-negative integer levels::

    levels:
      4: {name: perfectly relevant, definition: "...", instruction: "..."}
      3: {name: highly relevant, definition: "...", instruction: "..."}
      ...

Unknown levels raise ``ValueError``.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

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

class LevelSpec(BaseModel):
    """One level of a scale."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1)
    definition: str = Field(min_length=1)
    instruction: str = Field("", description="What to do at this level in a per-level prompt (${level_instruction}).")


class LevelScale(BaseModel):
    """A relevance scale: ``{level: LevelSpec}``, levels >= 0."""

    model_config = ConfigDict(extra="forbid")

    levels: dict[int, LevelSpec] = Field(min_length=1)

    def names(self) -> dict[int, str]:
        return {lv: spec.name for lv, spec in self.levels.items()}

    @property
    def fingerprint(self) -> str:
        """16 hex digits of the scale's content (part of the generation key when it is not the default)."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]

    def definitions_text(self, levels: list[int] | tuple[int, ...]) -> str:
        """A bullet list ``- level N (name): definition`` for ``levels`` in the given order."""
        return "\n".join(f"- level {lv} ({self.levels[lv].name}): {self.levels[lv].definition}" for lv in levels)


DEFAULT_SCALE = LevelScale(levels={lv: LevelSpec(name=LEVEL_NAMES[lv], definition=LEVEL_DEFINITIONS[lv],
                                                 instruction=LEVEL_INSTRUCTIONS[lv]) for lv in LEVEL_NAMES})


def load_scale(path: Path | None) -> LevelScale:
    """The scale of a levels file (YAML), or the TREC DL scale for None; DataFormatError naming the field."""
    if path is None:
        return DEFAULT_SCALE
    from synthrank.config_io import read_yaml_mapping, validation_error

    raw = read_yaml_mapping(Path(path), "levels file")
    try:
        scale = LevelScale.model_validate(raw)
    except ValidationError as err:
        raise validation_error(path, err) from None
    negative = [lv for lv in scale.levels if lv < 0]
    if negative:
        from synthrank.data.errors import DataFormatError

        raise DataFormatError(path, 0, "levels", f"levels must be >= 0, got {negative}")
    return scale


def check_levels(levels: list[int] | tuple[int, ...], scale: LevelScale = DEFAULT_SCALE) -> list[int]:
    """Return ``levels`` as a list with duplicates removed (order kept); raise ``ValueError`` for unknown ones."""
    out: list[int] = []
    for level in levels:
        if level not in scale.levels:
            raise ValueError(f"unknown relevance level {level!r}; the scale's levels: {', '.join(map(str, scale.levels))}")
        if level not in out:
            out.append(level)
    if not out:
        raise ValueError("at least one relevance level is required")
    return out


def definitions_text(levels: list[int] | tuple[int, ...]) -> str:
    """A bullet list ``- level N (name): definition`` for ``levels`` of the TREC DL scale."""
    return DEFAULT_SCALE.definitions_text(levels)
