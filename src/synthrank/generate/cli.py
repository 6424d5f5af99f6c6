"""``synthrank generate``: graded synthetic passages for real queries (thin typer layer over the API).

Mounted by the main CLI as ``app.add_typer(generate_app, name="generate")``; also runnable as
``python -m synthrank.generate.cli``.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Optional

import typer
from pydantic import ValidationError

from synthrank.cli_errors import exits_cleanly_on_bad_data
from synthrank.data import DataFormatError

generate_app = typer.Typer(
    help="Generate graded synthetic passages (levels 3/2/1/0) for real queries with an LLM.",
    invoke_without_command=True, no_args_is_help=False, add_completion=False,
)

RUN_EXAMPLE = """Examples:

  synthrank generate --queries queries.tsv --store out/gen.sqlite --export out/set

  synthrank generate --queries ../shared/data/scifact --split train --store s.sqlite --backend openai --model Qwen/Qwen2.5-7B-Instruct --base-url http://gpu1:8000/v1 --base-url http://gpu2:8000/v1 --concurrency 64
"""


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    raise typer.Exit(2)


def _parse_levels(text: str) -> list[int]:
    from synthrank.generate.levels import check_levels

    try:
        return check_levels([int(x) for x in text.split(",") if x.strip()])
    except ValueError as err:
        message = str(err)
    _fail(f"--levels: {message}")


def _load(queries: Path, split: Optional[str], limit: Optional[int]):
    """``(first `limit` queries, all by id)``, read like a generate job reads them (ref files too)."""
    from synthrank.generate.job import GenerateJob, load_job_queries

    try:
        return load_job_queries(GenerateJob.model_construct(queries=queries, split=split, limit=limit))
    except DataFormatError as err:
        _fail(str(err))


@generate_app.callback(epilog=RUN_EXAMPLE)
def run(
    ctx: typer.Context,
    queries: Optional[Path] = typer.Option(None, help="BEIR folder, queries .jsonl or .tsv (id TAB text)."),
    store: Optional[Path] = typer.Option(None, help="SQLite store (created if missing; re-running resumes)."),
    split: Optional[str] = typer.Option(None, help="BEIR folder: the split's queries (queries_SPLIT.jsonl, else those judged in qrels/SPLIT.tsv). Default: train (never the test queries unless asked)."),
    backend: str = typer.Option("embedded", help="embedded (in-process GGUF via xllamacpp) or openai (any compatible server)."),
    model: Optional[str] = typer.Option(None, help="embedded: registry name (smollm2-135m, qwen-coder-0.5b, qwen-coder-1.5b) or .gguf path; openai: model name."),
    base_url: list[str] = typer.Option([], help="openai: endpoint base URL, repeat to use several together."),
    api_key_env: str = typer.Option("OPENAI_API_KEY", help="openai: environment variable holding the API key (never printed)."),
    prompt: str = typer.Option("per-level", help="per-level, per-level-example, single-call, single-call-example, or a prompt file."),
    levels: str = typer.Option("3,2,1,0", help="Comma-separated relevance levels."),
    per_level: int = typer.Option(1, min=1, help="Passages per level."),
    limit: Optional[int] = typer.Option(None, min=1, help="Only the first N queries (in file order), after --offset."),
    offset: int = typer.Option(0, min=0, help="Skip the first N queries (file order): e.g. disjoint slices for several machines."),
    temperature: float = typer.Option(0.7), top_p: float = typer.Option(0.95),
    max_tokens: int = typer.Option(200, help="Token budget per passage."),
    seed: int = typer.Option(0, help="Base seed (per-request seeds derive from it)."),
    concurrency: int = typer.Option(4, min=1, help="Requests in flight (embedded: capped by --n-parallel)."),
    timeout: float = typer.Option(120.0, help="openai: deadline in seconds for a whole request (> 0)."),
    max_retries: int = typer.Option(6, help="Transport retries per request (5xx, 429, timeouts)."),
    max_invalid_retries: int = typer.Option(2, help="Extra requests when the answer is invalid."),
    threads: int = typer.Option(0, help="embedded: llama.cpp CPU threads (0 = cores - 1; never oversubscribe)."),
    n_parallel: int = typer.Option(2, help="embedded: decoding slots (continuous batching)."),
    no_schema: bool = typer.Option(False, help="openai: do not send response_format (for servers that reject it)."),
    collection: str = typer.Option("web pages and encyclopedia articles", help="What the target collection's documents are (prompts with ${collection}, e.g. per-level-hard)."),
    check_labels_with: Optional[str] = typer.Option(None, help="With --export: informativeness for this model and qrels/checked.tsv without the passages it and BM25 both contradict."),
    style_corpus: Optional[Path] = typer.Option(None, help="BEIR folder: its unjudged documents are shown as style examples (per-level-hard)."),
    seed_from: Optional[Path] = typer.Option(None, help="Seed the store from an export folder (generations.jsonl) first."),
    export: Optional[Path] = typer.Option(None, help="Export folder written after the run."),
    export_every: float = typer.Option(0, help="With --export: also export every N seconds while generating (0 = only at the end)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Generate passages for every query and level not yet done in the store (only missing or failed work)."""
    if ctx.invoked_subcommand is not None:
        return
    if queries is None or store is None:
        typer.echo(ctx.get_help())
        _fail("--queries and --store are required to generate")
    from synthrank.generate.job import GenerateJob, run_generate_job

    try:
        job = GenerateJob(queries=queries, split=split, limit=limit, offset=offset, store=store, export=export, backend=backend, model=model,
                          base_url=base_url, api_key_env=api_key_env, prompt=prompt, levels=_parse_levels(levels),
                          per_level=per_level, temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed,
                          concurrency=concurrency, timeout=timeout, max_retries=max_retries,
                          max_invalid_retries=max_invalid_retries, threads=threads, n_parallel=n_parallel,
                          use_schema=not no_schema, seed_from=seed_from, export_every=export_every,
                          style_corpus=style_corpus, collection=collection, check_labels_with=check_labels_with)
        run_generate_job(job, progress=progress, log=lambda message: typer.echo(message, err=True))
    except typer.Exit:  # click's Exit is a RuntimeError: let _fail's exit through as it is
        raise
    except ValidationError as err:
        first = err.errors()[0]
        option = "--" + str(first["loc"][0]).replace("_", "-") if first["loc"] else "option"
        _fail(f"{option}: {first['msg'].removeprefix('Value error, ')}")
    except DataFormatError as err:
        _fail(str(err))
    except (ValueError, RuntimeError) as err:
        _fail(str(err))


@generate_app.command(epilog="Example:\n\n  synthrank generate status --store out/gen.sqlite --queries queries.tsv")
@exits_cleanly_on_bad_data
def status(
    store: Path = typer.Option(..., exists=True, dir_okay=False, help="SQLite store."),
    queries: Optional[Path] = typer.Option(None, help="Queries file, to count filter rejections and missing work."),
    split: Optional[str] = typer.Option(None),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Summarise a store: generations, done/failed rows, per-level counts, filter rejections."""
    from rich.console import Console
    from rich.table import Table

    from synthrank.generate.export import filtered_items, summarize
    from synthrank.generate.store import Store

    loaded = _load(queries, split, None)[1] if queries else {}
    out = []
    with Store(store) as st:
        for g in st.generations():
            summary = summarize(filtered_items(st, g["gen_key"], loaded))
            if loaded:
                summary["queries_in_file"] = len(loaded)
            out.append({**{k: g[k] for k in ("gen_key", "model", "prompt_name", "prompt_hash", "sampling")}, **summary})
    if as_json:
        typer.echo(json.dumps(out, indent=1))
        return
    table = Table("generation", "model", "prompt", "queries", "done", "failed", "kept", "filtered", "tokens")
    for g in out:
        filtered = sum(v for k, v in g["filters"].items() if k != "kept")
        table.add_row(g["gen_key"], g["model"], g["prompt_name"], str(g["queries"]), str(g["done"]), str(g["failed"]),
                      str(g["kept"]), str(filtered), str(g["completion_tokens"]))
    console = Console()
    if not console.is_terminal:
        console = Console(width=160)
    console.print(table)
    for g in out:
        typer.echo(f"{g['gen_key']} filters: " + ", ".join(f"{k}={v}" for k, v in g["filters"].items()))
        if g["failure_reasons"]:
            typer.echo(f"{g['gen_key']} failures: " + ", ".join(f"{k}={v}" for k, v in g["failure_reasons"].items()))


@generate_app.command("export", epilog="Example:\n\n  synthrank generate export --store out/gen.sqlite --queries queries.tsv --out data/synthetic/myset --hf")
@exits_cleanly_on_bad_data
def export_cmd(
    store: Path = typer.Option(..., exists=True, dir_okay=False, help="SQLite store."),
    queries: Path = typer.Option(..., help="The queries the store was generated for (filters need their text)."),
    out: Path = typer.Option(..., help="Export folder."),
    split: Optional[str] = typer.Option(None),
    generation: Optional[str] = typer.Option(None, help="Generation key (prefix); needed when the store has several."),
    include_query_text: bool = typer.Option(False, help="Also write queries.jsonl with the query text."),
    hf: bool = typer.Option(False, help="Also write a Hugging Face datasets folder (out/hf)."),
) -> None:
    """Export a generation as a BEIR-style training set with a dataset card."""
    from synthrank.generate.export import export_generation
    from synthrank.generate.store import Store

    from synthrank.data.query_refs import default_split

    loaded = _load(queries, split, None)[1]
    split = default_split(queries, split)
    with Store(store) as st:
        try:
            key = st.resolve_generation(generation)
        except ValueError as err:
            _fail(str(err))
        try:
            card = export_generation(st, key, loaded, out, str(queries), include_query_text, hf, queries_split=split)
        except ValueError as err:
            _fail(str(err))
    typer.echo(f"exported {card['counts']['kept']} of {card['counts']['rows']} rows to {out}")


@generate_app.command(epilog="Example:\n\n  synthrank generate diagnose --export data/synthetic/myset --queries queries.tsv")
@exits_cleanly_on_bad_data
def diagnose(
    export: Path = typer.Option(..., exists=True, file_okay=False, help="Export folder (corpus.jsonl, qrels/train.tsv)."),
    queries: Path = typer.Option(..., help="Queries file the set was generated for."),
    split: Optional[str] = typer.Option(None),
    judges: str = typer.Option("bm25,dense", help="Comma-separated judges: bm25, dense (offline all-MiniLM-L6-v2)."),
    out: Optional[Path] = typer.Option(None, help="Where to write diagnose.json/.md/.png (default: the export folder)."),
    base_model: Optional[str] = typer.Option(None, help="Also measure informativeness: the share of labeled pairs this model (the one you will train) misorders; and check labels against it and BM25."),
    write_checked: bool = typer.Option(False, help="With --base-model: write qrels/checked.tsv, the qrels without passages whose level both judges contradict (train with split: checked)."),
) -> None:
    """Score every passage against its query with independent judges; report per-level means and Kendall tau."""
    from synthrank.generate.diagnose import diagnose_export, render_diagnose_table, render_informativeness_table

    loaded = _load(queries, split, None)[1]
    report = diagnose_export(export, loaded, [j.strip() for j in judges.split(",") if j.strip()], out or export,
                             base_model=base_model, write_checked=write_checked)
    typer.echo(render_diagnose_table(report))
    if "informativeness" in report:
        typer.echo("\n" + render_informativeness_table(report["informativeness"]))
        check = report["label_check"]
        typer.echo(f"\nlabel check: {check['contradicted']} of {check['of']} passages contradicted by bm25 and the base model "
                   f"(by level {check['by_level']})" + (f"; wrote {check['written']}" if "written" in check else ""))


@generate_app.command(epilog="Example:\n\n  synthrank generate study --queries ../shared/data/msmarco-dev-small-nocorpus --limit 50 --models smollm2-135m,qwen-coder-0.5b --out runs/study")
@exits_cleanly_on_bad_data
def study(
    queries: Path = typer.Option(..., help="Queries (BEIR folder, .jsonl or .tsv)."),
    out: Path = typer.Option(..., help="Folder for the stores, study.json and study.md."),
    split: Optional[str] = typer.Option(None),
    limit: int = typer.Option(50, help="First N queries."),
    models: str = typer.Option("smollm2-135m,qwen-coder-0.5b,qwen-coder-1.5b", help="Comma-separated embedded models."),
    prompts: str = typer.Option("per-level,per-level-example,single-call,single-call-example", help="Comma-separated prompts."),
    threads: int = typer.Option(0, help="llama.cpp threads (0 = cores - 1)."),
    n_parallel: int = typer.Option(2),
    judges: str = typer.Option("bm25,dense"),
) -> None:
    """Compare (model, prompt) pairs on the same queries: level fidelity, filter rejections, tokens/s."""
    from synthrank.generate.study import compare_prompts, render_comparisons, render_study, run_study

    query_list, loaded = _load(queries, split, limit)
    rows = run_study([m for m in models.split(",") if m], [p for p in prompts.split(",") if p], query_list, loaded, out,
                     threads or None, n_parallel, [j for j in judges.split(",") if j])
    typer.echo(render_study(rows))
    typer.echo(render_comparisons(compare_prompts(rows)))


@generate_app.command(epilog="Example:\n\n  synthrank generate models --fetch qwen-coder-1.5b")
@exits_cleanly_on_bad_data
def models(fetch: Optional[str] = typer.Option(None, help="Download and verify this model now.")) -> None:
    """List the model registry (name, file, sha256, cached or not); optionally fetch one."""
    from synthrank.generate.models import REGISTRY, cache_dir, fetch_model

    if fetch:
        try:
            typer.echo(str(fetch_model(fetch)))
        except (ValueError, RuntimeError) as err:
            _fail(str(err))
        return
    for spec in REGISTRY.values():
        cached = any(p.is_file() for p in (cache_dir() / spec.filename, Path.home() / ".cache" / "offline-llm" / spec.filename))
        typer.echo(f"{spec.name:16} {spec.filename:45} sha256 {spec.sha256[:12]}  {'cached' if cached else '-':6}  {spec.note}")


if __name__ == "__main__":
    generate_app(prog_name="synthrank generate")
