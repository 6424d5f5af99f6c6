"""One generation job as data: the options of ``synthrank generate`` in a pydantic model, and
the function that carries it out (used by the CLI and by ``synthrank run``'s generate stage).

Contract of :func:`run_generate_job`: seed the store from ``seed_from`` (an earlier export)
when given, generate only rows that are missing or failed for the job's generation
(model + prompt + sampling), export the kept passages to ``export`` (a folder that already
holds *another* generation is refused unless ``replace_export``), and optionally diagnose
level fidelity there. Returns a JSON-ready summary.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import sys
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from synthrank.generate.backends.base import execution
from synthrank.generate.backends import BackendOptions, EmbeddedOptions, OpenAIOptions, get_backend_class
from synthrank.generate.filters import FilterSettings
from synthrank.generate.runner import GenerationOptions


class GenerateJob(GenerationOptions, EmbeddedOptions, OpenAIOptions):
    """One ``synthrank generate`` job: the queries, the backend and its options, the generation
    options, and where rows go. This one model is the CLI's options, a run config's ``generate:``
    section and the Python API's argument. A backend's own options come from its options model."""

    model_config = ConfigDict(extra="forbid")

    queries: Path = Field(description="BEIR folder, queries .jsonl or .tsv (id TAB text).")
    split: str | None = Field(None, description="BEIR folder: the split's queries (queries_SPLIT.jsonl, else those judged "
                                                "in qrels/SPLIT.tsv). Default: train (never the test queries unless asked).")
    limit: int | None = Field(None, ge=1, description="Only the first N queries (file order), after --offset.")
    offset: int = Field(0, ge=0, description="Skip the first N queries (file order) first: disjoint slices for several "
                                             "machines, or another subset of the same size.")
    backend: str = Field("embedded", description="embedded (in-process GGUF via xllamacpp) or openai (any compatible server).")
    store: Path | None = Field(None, **execution("SQLite store (created if missing; re-running resumes). Set by synthrank run."))
    export: Path | None = Field(None, **execution("Export folder written after the run. Set by synthrank run."))
    export_every: float = Field(0, ge=0, **execution("With --export: also export every N seconds while generating "
                                                     "(0 = only at the end)."))
    seed_from: Path | None = Field(None, description="Seed the store from an export folder (generations.jsonl) first.")
    filters: FilterSettings = Field(default_factory=FilterSettings, description="Quality filter thresholds and "
                                                                                "cross-query dedupe (generate/filters.py).")
    diagnose: list[str] = Field(default_factory=list, description="Judges for level fidelity after export (bm25, dense).")
    check_labels_with: str | None = Field(None, description="After export, measure informativeness for this model (the one "
                                                            "to be trained) and write qrels/checked.tsv: the qrels without "
                                                            "passages whose level it and BM25 both contradict (train on "
                                                            "them with split: checked).")

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        get_backend_class(value)  # ValueError naming the registered backends
        return value

    def backend_options(self) -> BackendOptions:
        """This job's options for its backend, as the backend's own model."""
        options_model = get_backend_class(self.backend).options_model
        return options_model.model_validate(self.model_dump(include=set(options_model.model_fields)))


def execution_fields(model: type[BaseModel]) -> frozenset[str]:
    """Fields marked as execution options (see ``backends.base.execution``)."""
    return frozenset(name for name, info in model.model_fields.items()
                     if isinstance(info.json_schema_extra, dict) and info.json_schema_extra.get("execution"))


#: Fields that change how fast or where rows are generated, not what is generated (the store keys rows
#: by model, prompt and sampling): `synthrank run` leaves them out of the stage fingerprint, so
#: resuming with more threads or more endpoints does not count as a new generate stage.
EXECUTION_FIELDS = execution_fields(GenerateJob)


def load_job_queries(job: GenerateJob):
    """``(queries to generate for, all queries of the file by id)``: ``limit`` queries from ``offset`` on.

    A BEIR folder gives the queries of ``job.split`` (default ``train``; see ``load_split_queries``)."""
    from synthrank.data.query_refs import is_beir_queries_folder, load_any_queries, load_split_queries

    if is_beir_queries_folder(Path(job.queries)):
        loaded, _ = load_split_queries(Path(job.queries), job.split)
    else:
        loaded = load_any_queries(Path(job.queries), job.split)
    items = list(loaded.values())[job.offset:]
    return (items[: job.limit] if job.limit else items), loaded


def make_backend(job: GenerateJob):
    """The job's backend, built by its class from its options (``ValueError``/``RuntimeError`` when it cannot be)."""
    return get_backend_class(job.backend).from_options(job.backend_options())


def run_generate_job(job: GenerateJob, progress: bool = True, replace_export: bool = False, log=None) -> dict:
    """Carry out ``job`` (see the module docstring). ``log`` receives one-line messages (default: stderr)."""
    from synthrank.generate.export import export_generation, read_export
    from synthrank.generate.prompts import load_prompt
    from synthrank.generate.runner import GenerationSettings, run_generation
    from synthrank.generate.store import Store

    log = log or (lambda message: print(message, file=sys.stderr))
    if job.store is None:
        raise ValueError("the generate job needs a store path")
    from synthrank.data.query_refs import default_split

    query_list, all_queries = load_job_queries(job)
    split = default_split(job.queries, job.split)
    template = load_prompt(job.prompt)
    if template.kind == "single-call" and job.uniform_count is None:
        raise ValueError(f"per_level: prompt {job.prompt!r} asks for every level in one call, so one count for all levels; "
                         "use a per-level prompt for different counts")
    style = None
    if job.style_corpus is not None:
        from synthrank.generate.style import load_style_pool

        if not template.uses_style_example:
            raise ValueError(f"style_corpus is set but prompt {job.prompt!r} has no ${{style_example}} (try per-level-hard)")
        style = load_style_pool(Path(job.style_corpus), job.style_words)
    from synthrank.generate.levels import load_scale

    settings = GenerationSettings(template, GenerationOptions.model_validate(job.model_dump(include=set(GenerationOptions.model_fields))),
                                  style, load_scale(job.levels_file))
    Path(job.store).parent.mkdir(parents=True, exist_ok=True)
    with Store(job.store) as store:
        if job.seed_from is not None:
            if not (Path(job.seed_from) / "generations.jsonl").is_file():
                raise ValueError(f"seed_from {job.seed_from}: no generations.jsonl there (not an export folder of synthrank generate)")
            gen, rows = read_export(Path(job.seed_from))
            store.import_rows(gen, rows)
            log(f"seeded store with {len(rows)} rows from {job.seed_from}")
            seeded_ids = {r["query_id"] for r in rows}
        from synthrank.generate.runner import RunSummary, plan_tasks

        backend_class = get_backend_class(job.backend)
        model_id = backend_class.known_model_id(job.backend_options())
        backend = None
        if model_id is None or plan_tasks(query_list, settings, store.done_keys(store.register(settings.generation(model_id)))):
            backend = make_backend(job)  # only when there is work: a complete set needs no model (no download)
            model_id = backend.model_id
        gen_key = store.register(settings.generation(model_id))
        export = Path(job.export) if job.export is not None else None
        previous = export / "generation.json" if export is not None else None
        if previous is not None and previous.is_file() and json.loads(previous.read_text()).get("gen_key") != gen_key:
            if not replace_export:
                raise ValueError(f"{export} holds another generation (prompt or model changed?): export to another folder")
            shutil.rmtree(export)

        selected = {q.id for q in query_list}  # the export holds exactly the job's queries, whatever else the store has
        if export is not None and job.seed_from is not None and Path(job.export).resolve() == Path(job.seed_from).resolve():
            # The folder is the store's archive (a resumed campaign): re-exporting it with a smaller
            # --limit must not drop the queries it already held.
            selected |= seeded_ids

        def do_export():
            return export_generation(store, gen_key, all_queries, export, str(job.queries), queries_split=split, settings=job.filters,
                                     only_queries=selected)

        async def periodic_export():
            while True:
                await asyncio.sleep(job.export_every)
                do_export()

        async def main():
            ticker = asyncio.create_task(periodic_export()) if export is not None and job.export_every > 0 else None
            try:
                return await run_generation(query_list, backend, store, settings, progress=progress)
            finally:
                if ticker is not None:
                    ticker.cancel()
                await backend.aclose()

        summary = asyncio.run(main()) if backend is not None else RunSummary(gen_key=gen_key)
        log(f"generation {summary.gen_key}: planned {summary.planned_rows}, done {summary.done_rows}, "
            f"failed {summary.failed_rows}, {summary.calls} calls, {summary.tokens_per_s:.1f} tok/s")
        result = {"gen_key": gen_key, "model_id": model_id, "planned_rows": summary.planned_rows,
                  "done_rows": summary.done_rows, "failed_rows": summary.failed_rows, "calls": summary.calls,
                  "completion_tokens": summary.completion_tokens, "seconds": round(summary.seconds, 2),
                  "tokens_per_s": round(summary.tokens_per_s, 2), "queries": len(query_list)}
        if export is None:
            return result
        card = do_export()
        result["counts"] = card["counts"]
        log(f"exported {card['counts']['kept']} passages to {export}")
        if job.diagnose or job.check_labels_with:
            from synthrank.generate.diagnose import diagnose_export

            result["fidelity"] = diagnose_export(export, all_queries, job.diagnose or ["bm25"], export,
                                                 base_model=job.check_labels_with, write_checked=bool(job.check_labels_with))
            if job.check_labels_with:
                check = result["fidelity"]["label_check"]
                log(f"label check: {check['contradicted']} of {check['of']} passages contradicted; wrote {check['written']}")
            card = export_generation(store, gen_key, all_queries, export, str(job.queries), queries_split=split, settings=job.filters,
                                     only_queries=selected)  # the card carries the figures
        return result
