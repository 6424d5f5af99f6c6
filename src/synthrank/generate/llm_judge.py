"""An LLM as a relevance judge for ``synthrank generate diagnose``: any backend, another model than the generator.

Each (query, passage) pair gets one request: the scale's level definitions (the TREC DL scale,
``generate/levels.py``) and the pair, and the answer must be ``{"grade": G}`` with G one of the
levels (a JSON schema sent as ``response_format``; the embedded backend enforces it with
llama.cpp's grammar, servers that support it do too). Sampling is greedy (temperature 0). An
answer that is not a valid grade after the retries counts as ungraded (``None``): it is reported,
never guessed. The grades enter the fidelity report like any judge's scores (mean per level,
Kendall tau, pair accuracy), plus a confusion table: intended level x judged grade.

``mode: logprobs`` asks instead for the grade as one token (``max_tokens`` 1, no schema, with
``"logprobs": true, "top_logprobs": 10``, which vLLM, SGLang and llama.cpp return) and scores the
pair with the expected grade under the model's probabilities over the grade tokens among those 10:
``sum_g p(g) g / sum_g p(g)``. A continuous score separates passages a single grade lumps
together; the confusion table counts it at its nearest grade. A pair with no grade token among the
alternatives (or a backend that returns no log-probabilities) is ungraded.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, defaultdict

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from synthrank.generate.levels import DEFAULT_SCALE

SYSTEM = ("You are a careful relevance assessor for a search engine. You grade how well a passage answers a "
          "query, using a fixed scale. Answer with JSON only.")
USER = """Relevance scale:
${definitions}

Query: ${query}

Passage: ${passage}

Which grade of the scale does the passage deserve for the query? Answer {"grade": G} with G one of ${grades}."""
USER_ONE_TOKEN = USER.rsplit("\n", 1)[0] + """
Which grade of the scale does the passage deserve for the query? Answer with the grade alone, one of ${grades}."""
TOP_LOGPROBS = 10


class LLMJudgeOptions(BaseModel):
    """The LLM judge: which backend and model (the generator's own options models build it)."""

    model_config = ConfigDict(extra="forbid")

    backend: str = Field("embedded", description="The llm judge's backend: embedded or openai.")
    model: str = Field(description="The llm judge's model (judges: llm): embedded registry name or .gguf path, or the "
                                   "server's model name with backend openai. Not the generator.")
    base_url: list[str] = Field(default_factory=list, description="openai llm judge: endpoint base URLs.")
    concurrency: int = Field(4, ge=1, description="The llm judge's requests in flight.")
    max_invalid_retries: int = Field(2, ge=0, description="Tries again after an answer that is not a grade.")
    mode: Literal["grade", "logprobs"] = Field("grade", description="The llm judge's answer: grade (a JSON grade) or logprobs "
                                                                    "(the expected grade under the first token's "
                                                                    "log-probabilities, where the backend returns them).")


def grade_schema(levels: list[int]) -> dict:
    return {"type": "object", "properties": {"grade": {"type": "integer", "enum": sorted(levels)}},
            "required": ["grade"], "additionalProperties": False}


def parse_grade(text: str, levels: list[int]) -> int | None:
    """The grade in an answer, or None when it is not ``{"grade": <one of levels>}``."""
    body = text.strip().removeprefix("```json").removeprefix("```").removesuffix("```").strip()
    try:
        grade = json.loads(body).get("grade")
    except (json.JSONDecodeError, AttributeError):
        return None
    return grade if isinstance(grade, int) and not isinstance(grade, bool) and grade in levels else None


def expected_grade(top_logprobs: dict[str, float] | None, levels: list[int]) -> float | None:
    """``sum_g p(g) g / sum_g p(g)`` over the alternatives that are a grade (token text, spaces stripped);
    None when none is."""
    import math

    mass: dict[int, float] = {}
    for token, logprob in (top_logprobs or {}).items():
        text = token.strip()
        if text.lstrip("-").isdigit() and int(text) in levels and math.isfinite(logprob):
            mass[int(text)] = mass.get(int(text), 0.0) + math.exp(logprob)
    total = sum(mass.values())
    return sum(g * p for g, p in mass.items()) / total if total > 0 else None


def make_backend(options: LLMJudgeOptions):
    from synthrank.generate.backends import get_backend_class

    cls = get_backend_class(options.backend)
    fields = {"model": options.model, **({"base_url": options.base_url} if "base_url" in cls.options_model.model_fields else {})}
    return cls.from_options(cls.options_model.model_validate(fields))


def llm_grades(pairs: list[tuple[str, str]], options: LLMJudgeOptions, levels: list[int] | None = None,
               generator_model: str | None = None, backend=None) -> tuple[list[float | None], str]:
    """Grades of ``pairs`` ``[(query text, passage)]`` (ints, or expected grades with ``mode: logprobs``), and the judge's model id. ``generator_model`` (the model
    id that wrote the passages) is refused as judge: a model grading its own text is no independent judge."""
    from string import Template

    from synthrank.generate.retry import RetryPolicy, complete_with_retries

    levels = sorted(levels or DEFAULT_SCALE.levels, reverse=True)
    backend = backend or make_backend(options)
    if generator_model and backend.model_id == generator_model:
        raise ValueError(f"the LLM judge {backend.model_id} wrote these passages; judge with another model")
    schema = grade_schema(levels)
    definitions = DEFAULT_SCALE.definitions_text([lv for lv in levels if lv in DEFAULT_SCALE.levels])
    grades: list[float | None] = [None] * len(pairs)
    limit = asyncio.Semaphore(min(options.concurrency, backend.max_concurrency or options.concurrency))

    one_token = options.mode == "logprobs"

    async def one(i: int, query: str, passage: str) -> None:
        user = Template(USER_ONE_TOKEN if one_token else USER).safe_substitute(
            definitions=definitions, query=" ".join(query.split()), passage=" ".join(passage.split()),
            grades=", ".join(map(str, levels)))
        messages = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
        async with limit:
            for attempt in range(options.max_invalid_retries + 1):
                sampling = {"temperature": 0.0, "top_p": 1.0, "max_tokens": 1 if one_token else 16, "seed": attempt}
                if one_token:
                    sampling.update(logprobs=True, top_logprobs=TOP_LOGPROBS)
                try:
                    completion, _ = await complete_with_retries(backend, messages, None if one_token else schema, sampling,
                                                                RetryPolicy(max_retries=3))
                except Exception:  # noqa: BLE001 - a failed call leaves the pair ungraded, reported as such
                    return
                grades[i] = (expected_grade(completion.top_logprobs, levels) if one_token
                             else parse_grade(completion.text, levels))
                if grades[i] is not None or one_token:  # greedy log-probabilities do not change on a retry
                    return

    async def main() -> None:
        try:
            await asyncio.gather(*(one(i, q, p) for i, (q, p) in enumerate(pairs)))
        finally:
            await backend.aclose()

    asyncio.run(main())
    return grades, backend.model_id


def confusion(levels: list[int], grades: list[float | None]) -> dict:
    """``{intended level: {judged grade or "none": count}}``, levels descending (an expected grade counts at its nearest grade)."""
    table: dict[str, Counter] = defaultdict(Counter)
    for level, grade in zip(levels, grades):
        table[str(level)]["none" if grade is None else str(int(round(grade)))] += 1
    return {lv: dict(sorted(table[lv].items(), reverse=True)) for lv in sorted(table, key=int, reverse=True)}


def render_confusion(name: str, table: dict) -> str:
    grades = sorted({g for row in table.values() for g in row if g != "none"}, key=int, reverse=True)
    has_none = any("none" in row for row in table.values())
    head = "| intended level | " + " | ".join(f"judged {g}" for g in grades) + (" | ungraded |" if has_none else " |")
    lines = [f"Confusion, {name} (rows: the level a passage was written for; columns: the judge's grade):", "", head,
             "|---" * (len(grades) + 1 + has_none) + "|"]
    for level, row in table.items():
        lines.append(f"| {level} | " + " | ".join(str(row.get(g, 0)) for g in grades) + (f" | {row.get('none', 0)} |" if has_none else " |"))
    return "\n".join(lines)
