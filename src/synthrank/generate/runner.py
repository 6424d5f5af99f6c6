"""The generation loop: plan missing work, call the backend with bounded concurrency, validate, store.

One *task* is one request: a (query, level) for per-level prompts, a query for single-call
prompts; it produces ``n`` passages per level, i.e. ``n`` (or ``n * len(levels)``) store rows.
Invalid answers (bad JSON, wrong schema, truncated) are retried with a new seed up to
``max_invalid_retries`` times; after that - or when the backend keeps failing - the rows are
stored as ``failed`` with the reason and the raw answer, never dropped. Re-running plans only
rows that are missing or failed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import hashlib
import json
import time
from dataclasses import dataclass, field

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from tqdm.auto import tqdm

from synthrank.data import Query
from synthrank.generate.backends.base import Backend, BackendError, execution
from synthrank.generate.prompts import (DEFAULT_COLLECTION, InvalidAnswer, PromptRenderer, PromptTemplate, answer_schema,
                                        parse_answer)
from synthrank.generate.retry import RetryPolicy, complete_with_retries
from synthrank.generate.store import Generation, Store
from synthrank.generate.levels import DEFAULT_SCALE, LevelScale
from synthrank.generate.style import StylePool


class GenerationOptions(BaseModel):
    """What each request asks (prompt, levels, sampling) and how the loop sends them: the options
    :func:`synthrank.generate.runner.run_generation` reads."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field("per-level", description="per-level, per-level-example, per-level-hard, per-level-hard-grounded, "
                                                 "single-call, single-call-example, or a prompt file.")
    levels: list[int] = Field(default_factory=lambda: [3, 2, 1, 0], description="Relevance levels to write passages for.")
    levels_file: Path | None = Field(None, description="A YAML scale of levels with their names, definitions and "
                                                       "instructions (any integer levels, e.g. 0-4); default: the TREC DL "
                                                       "scale 3/2/1/0 (generate/levels.py).")
    per_level: int | dict[int, int] = Field(1, description="Passages per level: one count for every level, or one per "
                                                           "level as LEVEL=COUNT pairs (3=2,2=1,1=1,0=2; YAML: a mapping).",
                                            json_schema_extra={"cli": "str"})
    temperature: float = Field(0.7, ge=0, description="Sampling temperature.")
    top_p: float = Field(0.95, gt=0, le=1, description="Nucleus sampling mass.")
    max_tokens: int = Field(200, ge=1, description="Token budget per passage.")
    seed: int = Field(0, description="Base seed (per-request seeds derive from it).")
    concurrency: int = Field(4, ge=1, **execution("Requests in flight (embedded: capped by --n-parallel)."))
    max_retries: int = Field(6, ge=0, **execution("Transport retries per request (5xx, 429, timeouts)."))
    max_invalid_retries: int = Field(2, ge=0, description="Extra requests when an answer is invalid.")
    collection: str = Field(DEFAULT_COLLECTION, min_length=1,
                            description="What the target collection's documents are, for prompts with ${collection} "
                                        "(per-level-hard): e.g. 'abstracts of biomedical research papers'.")
    style_corpus: Path | None = Field(None, description="BEIR folder whose unjudged documents are shown as style examples "
                                                        "(prompts with ${style_example}, e.g. per-level-hard-grounded).")
    style_words: int = Field(120, ge=10, description="Style examples are cut to this many words.")

    @field_validator("levels")
    @classmethod
    def _levels(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("at least one relevance level is required")
        return list(dict.fromkeys(value))

    @model_validator(mode="after")
    def _levels_on_the_scale(self) -> "GenerationOptions":
        from synthrank.generate.levels import check_levels, load_scale

        if self.levels_file is None or Path(self.levels_file).is_file():  # a missing file is reported when it is read
            check_levels(self.levels, load_scale(self.levels_file))
        return self

    @field_validator("per_level", mode="before")
    @classmethod
    def _counts(cls, value):
        if isinstance(value, str):  # the command line: "2" or "3=2,2=1,1=1,0=2"
            text = value.strip()
            if "=" not in text:
                return int(text) if text.lstrip("-").isdigit() else text
            try:
                return {int(k): int(v) for k, v in (pair.split("=", 1) for pair in text.split(",") if pair.strip())}
            except ValueError:
                raise ValueError(f"per_level {value!r}: expected COUNT or LEVEL=COUNT pairs such as 3=2,2=1,1=1,0=2") from None
        return value

    @model_validator(mode="after")
    def _counts_cover_the_levels(self) -> "GenerationOptions":
        counts = self.per_level if isinstance(self.per_level, dict) else {}
        if isinstance(self.per_level, int) and self.per_level < 1:
            raise ValueError("per_level: at least 1 passage per level")
        missing = [lv for lv in self.levels if counts and lv not in counts]
        extra = [lv for lv in counts if lv not in self.levels]
        if missing or extra or any(n < 1 for n in counts.values()):
            raise ValueError(f"per_level: give a count >= 1 for each of the levels {self.levels} "
                             f"(missing {missing}, not a level {extra})")
        return self

    def count(self, level: int) -> int:
        """Passages to write at ``level``."""
        return self.per_level[level] if isinstance(self.per_level, dict) else self.per_level

    @property
    def uniform_count(self) -> int | None:
        """The one count of every level, or None when the levels have different counts."""
        counts = {self.count(lv) for lv in self.levels}
        return counts.pop() if len(counts) == 1 else None


@dataclass
class GenerationSettings:
    """A job's generation options with what they name loaded: the prompt template and the style pool.
    ``options.max_tokens`` is per passage; ``options.seed`` is a base seed."""

    prompt: PromptTemplate
    options: GenerationOptions = field(default_factory=GenerationOptions)
    style: StylePool | None = None  # real documents for ${style_example} (generate/style.py)
    scale: LevelScale = field(default_factory=lambda: DEFAULT_SCALE)  # the levels' names and definitions (generate/levels.py)
    backoff: RetryPolicy | None = None  # default: RetryPolicy(max_retries=options.max_retries)

    @property
    def retry(self) -> RetryPolicy:
        return self.backoff or RetryPolicy(max_retries=self.options.max_retries)

    def sampling(self) -> dict:
        """Sampling parameters that define the generation (the per-request seed is derived from ``seed``)."""
        o = self.options
        return {"temperature": o.temperature, "top_p": o.top_p, "max_tokens": o.max_tokens, "seed": o.seed}

    def generation(self, model_id: str) -> Generation:
        sampling, o = self.sampling(), self.options
        if self.prompt.kind == "single-call":  # the answer's shape depends on these
            sampling = dict(sampling, levels=o.levels, n=o.uniform_count)
        if self.style is not None and self.prompt.uses_style_example:  # other documents, other passages
            sampling = dict(sampling, style_pool=self.style.fingerprint)
        if self.prompt.uses("collection") and o.collection != DEFAULT_COLLECTION:  # other words, other passages
            sampling = dict(sampling, collection=o.collection)
        if self.scale != DEFAULT_SCALE:  # other definitions, other passages
            sampling = dict(sampling, scale=self.scale.fingerprint)
        return Generation(model_id, self.prompt.name, self.prompt.kind, self.prompt.hash, sampling)


@dataclass
class RunSummary:
    """Counts of one run. ``tokens_per_s`` = completion tokens of successful calls / wall seconds."""

    planned_rows: int = 0
    done_rows: int = 0
    failed_rows: int = 0
    calls: int = 0
    completion_tokens: int = 0
    generated_tokens: int = 0  # every completion received, valid or not (the backend's work)
    seconds: float = 0.0
    gen_key: str = ""

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.seconds if self.seconds else 0.0


@dataclass(frozen=True)
class Task:
    query: Query
    level: int | None  # None for single-call
    rows: tuple[tuple[int, int], ...]  # (level, idx)


_SORTED_JSON = json.JSONEncoder(sort_keys=True)  # json.dumps(..., sort_keys=True) without building an encoder per row


def _seed(gen_key: str, qid: str, level: int | None, base: int) -> int:
    digest = hashlib.sha256(f"{gen_key}|{qid}|{level}".encode()).hexdigest()
    return (int(digest[:8], 16) + base) % (2**31 - 1)


def plan_tasks(queries: list[Query], settings: GenerationSettings, done: set[tuple[str, int, int]]) -> list[Task]:
    """Tasks whose rows are not all done, in query order. A per-level task is planned if any of its rows is missing."""
    o = settings.options
    per_level = {lv: tuple((lv, i) for i in range(o.count(lv))) for lv in o.levels}  # a level's rows
    wanted = tuple(row for rows in per_level.values() for row in rows)
    single_call = settings.prompt.kind == "single-call"
    tasks = []
    for query in queries:
        qid = query.id
        if done and all((qid, lv, i) in done for lv, i in wanted):
            continue
        if single_call:
            tasks.append(Task(query, None, wanted))
            continue
        for lv, rows in per_level.items():
            if not done or any((qid, lv, i) not in done for _, i in rows):
                tasks.append(Task(query, lv, rows))
    return tasks


class _BatchedWriter:
    """Store writes in batches: rows are buffered and written in one transaction every ``max_rows``
    rows or ``max_seconds`` (and at :meth:`flush`). A kill loses at most the last batch, whose
    rows are then simply missing and generated again on resume: nothing is duplicated."""

    def __init__(self, store: Store, max_rows: int = 256, max_seconds: float = 0.25) -> None:
        self.store, self.max_rows, self.max_seconds = store, max_rows, max_seconds
        self.rows: list[dict] = []
        self.last = time.monotonic()

    def add(self, rows: list[dict]) -> None:
        self.rows.extend(rows)
        if len(self.rows) >= self.max_rows or time.monotonic() - self.last >= self.max_seconds:
            self.flush()

    def flush(self) -> None:
        if self.rows:
            self.store.put(self.rows)
            self.rows = []
        self.last = time.monotonic()


@dataclass(frozen=True)
class _RequestKind:
    """What every request at one level (or every single-call request) shares, built once per run."""

    levels: list[int]  # the levels one answer holds
    n: int  # passages per level in one answer
    schema: dict
    renderer: PromptRenderer
    max_tokens: int  # the whole answer's token budget

    @classmethod
    def build(cls, settings: GenerationSettings, level: int | None) -> "_RequestKind":
        o = settings.options
        levels = [level] if level is not None else o.levels
        n = o.count(level) if level is not None else o.uniform_count  # single-call: one count (checked)
        renderer = settings.prompt.renderer(o.levels, n, level, o.collection, settings.scale)
        return cls(levels, n, answer_schema(settings.prompt.kind, levels, n), renderer, o.max_tokens * n * len(levels) + 40)


async def _run_task(task: Task, request: _RequestKind, backend: Backend, store: "_BatchedWriter",
                    settings: GenerationSettings, retry: RetryPolicy, gen: Generation, gen_key: str,
                    summary: RunSummary, done: set) -> int:
    o = settings.options
    kind, levels, n, schema = settings.prompt.kind, request.levels, request.n, request.schema
    style = settings.style.example_for(task.query.id) if settings.style is not None else None
    messages = request.renderer.messages(task.query.text, style)
    per_call = request.max_tokens
    base_seed = _seed(gen_key, task.query.id, task.level, o.seed)
    calls, error, raw, groups, completion, latency = 0, None, None, None, None, 0.0
    for attempt in range(o.max_invalid_retries + 1):
        sampling = {"temperature": o.temperature, "top_p": o.top_p, "max_tokens": per_call, "seed": base_seed + attempt}
        start = time.perf_counter()
        try:
            completion, n_calls = await complete_with_retries(backend, messages, schema, sampling, retry)
        except BackendError as err:
            calls += getattr(err, "calls", 1)
            error, raw = f"backend: {err}", None
            break
        latency = time.perf_counter() - start
        calls += n_calls
        summary.generated_tokens += completion.completion_tokens
        raw = completion.text
        try:
            groups = parse_answer(completion.text, kind, levels, n)
            summary.completion_tokens += completion.completion_tokens
            break
        except InvalidAnswer as err:
            truncated = " (truncated: finish_reason=length)" if completion.finish_reason == "length" else ""
            error = f"invalid output: {err}{truncated}"
    summary.calls += calls
    rows = []
    k = len(task.rows)
    sampling_text = _SORTED_JSON.encode(sampling)
    for level, idx in task.rows:
        if (task.query.id, level, idx) in done:
            continue
        row = {"gen_key": gen_key, "query_id": task.query.id, "level": level, "idx": idx,
               "prompt_hash": gen.prompt_hash, "model": gen.model, "sampling": sampling_text, "raw": raw,
               "attempts": calls, "latency_s": round(latency, 4),
               "endpoint": completion.endpoint if completion else None, "updated": time.time()}
        if groups is not None:
            row.update(status="done", passage=groups[level][idx], error=None,
                       prompt_tokens=completion.prompt_tokens // k, completion_tokens=completion.completion_tokens // k)
        else:
            row.update(status="failed", passage=None, error=error, prompt_tokens=None, completion_tokens=None)
        rows.append(row)
    store.add(rows)
    for row in rows:
        if row["status"] == "done":
            summary.done_rows += 1
            done.add((row["query_id"], row["level"], row["idx"]))
        else:
            summary.failed_rows += 1
    return len(rows)


@contextlib.contextmanager
def _objects_so_far_frozen():
    """Keep the objects that exist now (the imported libraries: ~10^5) out of the garbage collector's full
    passes while the loop runs (``gc.freeze``; each pass over them costs ~50 ms). Nothing is leaked: they are
    handed back at the end. Left alone when the caller already froze objects of its own."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def run_generation(queries: list[Query], backend: Backend, store: Store, settings: GenerationSettings,
                         progress: bool = True) -> RunSummary:
    """Generate every missing or failed row for ``queries``; return a :class:`RunSummary`.

    Concurrency is ``settings.options.concurrency`` requests in flight (capped by the backend's own
    limit). Safe to interrupt at any point: finished requests are stored in batches (at least every
    0.25 s, and when the run ends or fails); an interrupted batch is generated again on resume.
    """
    gen = settings.generation(backend.model_id)
    gen_key = store.register(gen)
    done = store.done_keys(gen_key)
    tasks = plan_tasks(queries, settings, done)
    summary = RunSummary(gen_key=gen_key)
    summary.planned_rows = sum(len(t.rows) for t in tasks) - sum(
        1 for t in tasks for lv, i in t.rows if (t.query.id, lv, i) in done)
    limit = settings.options.concurrency
    if backend.max_concurrency:
        limit = min(limit, backend.max_concurrency)
    queue = collections.deque(tasks)  # one event loop: workers take tasks in turn without a lock
    kinds = {level: _RequestKind.build(settings, level) for level in {task.level for task in tasks}}
    retry = settings.retry
    bar = tqdm(total=summary.planned_rows, unit="passage", desc="generate", disable=not progress, dynamic_ncols=True)
    writer = _BatchedWriter(store)
    start = time.perf_counter()
    postfix_at = [0.0]

    async def worker() -> None:
        while True:
            if not queue:
                return
            task = queue.popleft()
            written = await _run_task(task, kinds[task.level], backend, writer, settings, retry, gen, gen_key, summary, done)
            now = time.perf_counter()
            if progress and now - postfix_at[0] >= 0.5:  # formatting it per request costs more than a fast server's answer
                postfix_at[0] = now
                bar.set_postfix(failed=summary.failed_rows, tok_s=f"{summary.completion_tokens / max(now - start, 1e-9):.1f}",
                                refresh=False)  # drawn by update() at tqdm's own interval
            bar.update(written)

    try:
        with _objects_so_far_frozen():
            await asyncio.gather(*(worker() for _ in range(max(1, limit))))
    finally:
        writer.flush()
        bar.close()
        summary.seconds = time.perf_counter() - start
    return summary
