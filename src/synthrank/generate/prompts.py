"""Prompt files: loading, rendering to chat messages, JSON schemas and answer validation.

A prompt file is plain text (see ``prompts/per-level.txt``)::

    # comments
    kind: per-level            (or: single-call)
    [system]
    ...system message...
    [user-level-0]             (optional, per-level prompts: replaces [user] for that level)
    ...
    [user]
    ...user message with ${query}, ${level}, ${level_name}, ${level_definition},
       ${definitions}, ${n}, ${example}, ${keys},
       ${level_instruction}, ${distractor}, ${style_example}, ${collection}...

Built-in prompts are package data (``per-level``, ``per-level-example``, ``per-level-hard``,
``single-call``, ``single-call-example``); any other value is read as a path, so users can override them.
The prompt hash covers the template, the worked example and the level definitions, so
editing any of them starts a new generation instead of silently mixing outputs.

Answers are validated with pydantic; the model's text is only ever parsed with ``json.loads``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template

from pydantic import BaseModel, ValidationError, field_validator

from synthrank.data import DataFormatError
from synthrank.generate.levels import LEVEL_DEFINITIONS, LEVEL_INSTRUCTIONS, LEVEL_NAMES

BUILTIN_PROMPTS = ("per-level", "per-level-example", "per-level-hard", "per-level-hard-grounded", "single-call", "single-call-example")
KINDS = ("per-level", "single-call")
#: ``${collection}`` when the job names none.
DEFAULT_COLLECTION = "web pages and encyclopedia articles"


@dataclass(frozen=True)
class PromptTemplate:
    """A parsed prompt file. ``hash`` is a 16-hex-digit content hash (template + example + definitions)."""

    name: str
    kind: str
    system: str
    user: str
    example: str
    hash: str
    level_users: tuple[tuple[int, str], ...] = ()

    def uses(self, placeholder: str) -> bool:
        """Whether the prompt's messages contain ``${placeholder}``."""
        return any("${" + placeholder + "}" in part for part in (self.system, self.user, *(u for _, u in self.level_users)))

    @property
    def uses_style_example(self) -> bool:
        """Whether the prompt shows a real document of the collection (``${style_example}``)."""
        return self.uses("style_example")

    def messages(self, query: str, levels: list[int], n: int, level: int | None = None,
                 style_example: str | None = None, collection: str = DEFAULT_COLLECTION, scale=None) -> list[dict]:
        """Chat messages for one request: a per-level prompt needs ``level``, a single-call one ignores it.

        ``style_example`` fills ``${style_example}`` (a real document, see ``generate/style.py``);
        without one a generic encyclopedia sentence is shown. ``collection`` fills ``${collection}``,
        a few words on what the target collection's documents are ("abstracts of biomedical papers").
        ``scale`` (a :class:`~synthrank.generate.levels.LevelScale`) names and defines the levels
        (default: the TREC DL scale). The same as ``self.renderer(...).messages(query, style_example)``.
        """
        return self.renderer(levels, n, level, collection, scale).messages(query, style_example)

    def renderer(self, levels: list[int], n: int, level: int | None = None, collection: str = DEFAULT_COLLECTION,
                 scale=None) -> "PromptRenderer":
        """The messages of one kind of request (levels, count, level, collection, scale) with everything but the
        query's own values filled in once: what the generation loop calls per request."""
        from synthrank.generate.levels import DEFAULT_SCALE

        scale = scale or DEFAULT_SCALE
        if self.kind == "per-level" and level is None:
            raise ValueError("a per-level prompt needs a level")
        fixed = {
            "n": str(n),
            "definitions": scale.definitions_text(levels),
            "example": self.example,
            "keys": ", ".join(f'"{level_key(lv)}"' for lv in levels),
            "level": "" if level is None else str(level),
            "level_name": "" if level is None else scale.levels[level].name,
            "level_definition": "" if level is None else scale.levels[level].definition,
            "collection": " ".join(collection.split()),
        }
        # an instruction is filled in before the messages, so ${level_instruction} inside one stays as written
        instruction = _Segments("" if level is None else scale.levels[level].instruction, fixed,
                                per_query=_PER_QUERY[:-1])
        user = dict(self.level_users).get(level, self.user) if level is not None else self.user
        parts = [("system", _Segments(self.system, fixed))] if self.system.strip() else []
        return PromptRenderer(tuple(parts) + (("user", _Segments(user, fixed)),), instruction)


#: ``${name}``s whose values depend on the query (filled per request by :class:`PromptRenderer`).
_PER_QUERY = ("query", "distractor", "style_example", "level_instruction")


class _Segments:
    """A ``string.Template`` text split once into literal text and the per-query placeholders left.

    Rendering joins the pieces with the per-query values: the same text as ``Template(text).safe_substitute``
    with the fixed and the per-query values in one mapping (one pass: a value is never substituted again;
    ``$$`` becomes ``$``; an unknown or malformed placeholder stays as written)."""

    def __init__(self, text: str, fixed: dict[str, str], per_query: tuple[str, ...] = _PER_QUERY) -> None:
        pieces: list[str] = []  # even positions: literal text; odd positions: a per-query name
        literal: list[str] = []
        last = 0
        for match in Template.pattern.finditer(text):
            literal.append(text[last:match.start()])
            last = match.end()
            name = match.group("named") or match.group("braced")
            if match.group("escaped") is not None:
                literal.append(Template.delimiter)
            elif name is not None and name in per_query:
                pieces += ["".join(literal), name]
                literal = []
            elif name is not None and name in fixed:
                literal.append(fixed[name])
            else:  # unknown or invalid: kept as written
                literal.append(match.group(0))
        literal.append(text[last:])
        pieces.append("".join(literal))
        self.pieces = tuple(pieces)
        self.names = frozenset(pieces[1::2])

    def render(self, values: dict[str, str]) -> str:
        pieces = self.pieces
        if len(pieces) == 1:
            return pieces[0]
        out = list(pieces)
        for i in range(1, len(out), 2):
            out[i] = values[out[i]]
        return "".join(out)


class PromptRenderer:
    """Messages of one kind of request (see :meth:`PromptTemplate.renderer`); :meth:`messages` fills a query in."""

    def __init__(self, parts: tuple[tuple[str, _Segments], ...], instruction: _Segments) -> None:
        self.parts, self.instruction = parts, instruction
        self.names = frozenset().union(*(segments.names for _, segments in parts))
        if "level_instruction" in self.names:
            self.names |= instruction.names

    def messages(self, query: str, style_example: str | None = None) -> list[dict]:
        """``[{"role": "system", ...}, {"role": "user", ...}]`` (no system message when the prompt has none)."""
        names = self.names
        values = {"query": " ".join(query.split())}
        if "distractor" in names:
            values["distractor"] = distractor_for(query)
        if "style_example" in names:
            from synthrank.generate.style import GENERIC_STYLE

            values["style_example"] = " ".join((style_example or GENERIC_STYLE).split())
        if "level_instruction" in names:
            values["level_instruction"] = self.instruction.render(values)
        return [{"role": role, "content": segments.render(values).strip()} for role, segments in self.parts]


def distractor_for(query: str) -> str:
    """An unrelated subject for level-0 passages, chosen deterministically from the query text."""
    topics = _distractor_topics()
    return topics[int(hashlib.sha256(query.encode("utf-8")).hexdigest()[:8], 16) % len(topics)]


@functools.lru_cache(maxsize=1)
def _distractor_topics() -> tuple[str, ...]:
    return tuple(t.strip() for t in _read_data("distractors.txt").splitlines() if t.strip())


def _read_data(name: str) -> str:
    return resources.files("synthrank.generate").joinpath(f"prompts/{name}").read_text("utf-8")


def level_key(level: int) -> str:
    """JSON key used for a level in single-call answers (``level_3``)."""
    return f"level_{level}"


def _read_example() -> str:
    return resources.files("synthrank.generate").joinpath("prompts/example.txt").read_text("utf-8").strip()


def parse_prompt_text(text: str, name: str, source: str | Path) -> PromptTemplate:
    """Parse prompt-file text; raise ``DataFormatError(source, line, field, ...)`` when malformed."""
    kind = None
    sections: dict[str, list[str]] = {}
    current = None
    for number, line in enumerate(text.splitlines(), start=1):
        stripped = line.strip()
        if current is None and (stripped.startswith("#") or not stripped):
            continue
        if current is None and stripped.startswith("kind:"):
            kind = stripped.split(":", 1)[1].strip()
            if kind not in KINDS:
                raise DataFormatError(source, number, "kind", f"must be one of {', '.join(KINDS)}, got {kind!r}")
            continue
        if stripped in ("[system]", "[user]") or re.fullmatch(r"\[user-level-[0-3]\]", stripped):
            current = stripped[1:-1]
            sections[current] = []
            continue
        if current is None:
            raise DataFormatError(source, number, "-", "expected 'kind: ...', '[system]' or '[user]'")
        sections[current].append(line)
    if kind is None:
        raise DataFormatError(source, 0, "kind", "missing 'kind: per-level' or 'kind: single-call' line")
    if "user" not in sections:
        raise DataFormatError(source, 0, "[user]", "missing [user] section")
    user = "\n".join(sections["user"])
    if "${query}" not in user:
        raise DataFormatError(source, 0, "[user]", "the user message must contain ${query}")
    if kind == "per-level" and "${level" not in user:
        raise DataFormatError(source, 0, "[user]", "a per-level prompt must use ${level} or ${level_definition}")
    if kind == "single-call" and any(k.startswith("user-level-") for k in sections):
        raise DataFormatError(source, 0, "[user-level-N]", "per-level user sections only make sense in a per-level prompt")
    level_users = tuple((int(k.rsplit("-", 1)[1]), "\n".join(v)) for k, v in sections.items() if k.startswith("user-level-"))
    example = _read_example() if "${example}" in text else ""
    digest = hashlib.sha256()
    parts = [text, example, json.dumps([LEVEL_DEFINITIONS, LEVEL_NAMES, LEVEL_INSTRUCTIONS], sort_keys=True)]
    if "${distractor}" in text or "${level_instruction}" in text:
        parts.append(_read_data("distractors.txt"))
    if "${style_example}" in text:
        from synthrank.generate.style import GENERIC_STYLE

        parts.append(GENERIC_STYLE)
    for part in parts:
        digest.update(part.encode("utf-8"))
        digest.update(b"\0")
    return PromptTemplate(name, kind, "\n".join(sections.get("system", [])), user, example, digest.hexdigest()[:16], level_users)


def load_prompt(name_or_path: str | Path) -> PromptTemplate:
    """Load a built-in prompt by name, or a user prompt file by path."""
    name = str(name_or_path)
    if name in BUILTIN_PROMPTS:
        text = resources.files("synthrank.generate").joinpath(f"prompts/{name}.txt").read_text("utf-8")
        return parse_prompt_text(text, name, f"<builtin {name}>")
    path = Path(name)
    if not path.is_file():
        raise DataFormatError(path, 0, "prompt", f"no such prompt file (built-in prompts: {', '.join(BUILTIN_PROMPTS)})")
    return parse_prompt_text(path.read_text("utf-8"), path.stem, path)


def answer_schema(kind: str, levels: list[int], n: int) -> dict:
    """JSON schema of a valid answer, sent as ``response_format`` to backends that enforce it."""
    passages = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": n, "maxItems": n}
    if kind == "per-level":
        props = {"passages": passages}
    else:
        props = {level_key(lv): passages for lv in levels}
    return {"type": "object", "properties": props, "required": list(props), "additionalProperties": False}


class PerLevelAnswer(BaseModel):
    """``{"passages": [str, ...]}``."""

    passages: list[str]

    @field_validator("passages")
    @classmethod
    def _strings(cls, value: list[str]) -> list[str]:
        return [v.strip() for v in value]


class InvalidAnswer(ValueError):
    """The model's text is not a valid answer; ``str`` says why (short, safe to store)."""


_FENCE = re.compile(r"^```(?:json)?\s*(.*?)\s*```$", re.S)


def parse_answer(text: str, kind: str, levels: list[int], n: int) -> dict[int, list[str]]:
    """Parse and validate an answer; return ``{level: [passage x n]}`` or raise ``InvalidAnswer``.

    Accepts the JSON object possibly wrapped in a Markdown code fence; nothing is evaluated.
    """
    body = text.strip()
    fenced = _FENCE.match(body)
    if fenced:
        body = fenced.group(1)
    try:
        obj = json.loads(body)
    except json.JSONDecodeError as err:
        raise InvalidAnswer(f"malformed JSON: {err.msg} at char {err.pos}") from None
    if not isinstance(obj, dict):
        raise InvalidAnswer(f"expected a JSON object, got {type(obj).__name__}")
    plain = obj.get("passages") if kind == "per-level" else None
    try:
        if isinstance(plain, list) and all(isinstance(p, str) for p in plain):  # the common case, without pydantic
            groups = {levels[0]: [p.strip() for p in plain]}
        elif kind == "per-level":
            groups = {levels[0]: PerLevelAnswer.model_validate(obj).passages}
        else:
            groups = {}
            for lv in levels:
                if level_key(lv) not in obj:
                    raise InvalidAnswer(f"missing key {level_key(lv)}")
                groups[lv] = PerLevelAnswer.model_validate({"passages": obj[level_key(lv)]}).passages
    except ValidationError as err:
        first = err.errors()[0]
        raise InvalidAnswer(f"schema: {'.'.join(map(str, first['loc']))}: {first['msg']}") from None
    for lv, passages in groups.items():
        if len(passages) < n:
            raise InvalidAnswer(f"level {lv}: expected {n} passages, got {len(passages)}")
        groups[lv] = passages[:n]
        empty = [i for i, p in enumerate(groups[lv]) if not p]
        if empty:  # stored as done it would never be generated again
            raise InvalidAnswer(f"level {lv}: passage {empty[0]} is empty")
    return groups
