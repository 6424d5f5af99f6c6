"""``synthrank generate``: graded synthetic passages for real queries (thin typer layer over the API).

The options of ``synthrank generate`` are the fields of :class:`~synthrank.generate.job.GenerateJob`
(built by :mod:`synthrank.cli.options`), the same as a run config's ``generate:`` section.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from synthrank.cli.errors import exits_cleanly_on_bad_data, fail
from synthrank.cli.options import apply_data_root, build_options, data_root_parameter, model_parameters, with_parameters
from synthrank.config_io import resolve_path
from synthrank.data import DataFormatError
from synthrank.generate.job import GenerateJob
from synthrank.generate.llm_judge import LLMJudgeOptions

generate_app = typer.Typer(
    help="Generate graded synthetic passages (levels 3/2/1/0) for real queries with an LLM.",
    invoke_without_command=True, no_args_is_help=False, add_completion=False,
)

RUN_EXAMPLE = """Examples:

  synthrank generate --queries queries.tsv --store out/gen.sqlite --export out/set

  synthrank generate --queries ../shared/data/scifact --split train --store s.sqlite --backend openai --model Qwen/Qwen2.5-7B-Instruct --base-url http://gpu1:8000/v1 --base-url http://gpu2:8000/v1 --concurrency 64
"""


_fail = fail
_LLM = "llm-"  # the flag prefix of the llm judge's options on diagnose (LLMJudgeOptions)


def _load(queries: Path, split: Optional[str], limit: Optional[int]):
    """``(first `limit` queries, all by id)``, read like a generate job reads them (ref files too)."""
    from synthrank.generate.job import GenerateJob, load_job_queries

    try:
        return load_job_queries(GenerateJob.model_construct(queries=resolve_path(queries, Path.cwd()), split=split, limit=limit))
    except DataFormatError as err:
        _fail(str(err))


def run(ctx: typer.Context, progress: bool = typer.Option(True, help="Show a progress bar."), **options) -> None:
    """Generate passages for every query and level not yet done in the store (only missing or failed work)."""
    apply_data_root(options.pop("data_root", None))
    if ctx.invoked_subcommand is not None:
        return
    if options.get("queries") is None or options.get("store") is None:
        typer.echo(ctx.get_help())
        _fail("--queries and --store are required to generate")
    from synthrank.generate.job import run_generate_job

    try:
        job = build_options(GenerateJob, options)
        job = job.model_copy(update={"queries": resolve_path(job.queries, Path.cwd())})
        run_generate_job(job, progress=progress, log=lambda message: typer.echo(message, err=True))
    except typer.Exit:  # click's Exit is a RuntimeError: let _fail's exit through as it is
        raise
    except (DataFormatError, ValueError, RuntimeError) as err:
        _fail(str(err))


generate_app.callback(epilog=RUN_EXAMPLE)(with_parameters(run, [data_root_parameter(), *model_parameters(GenerateJob)]))


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
    push_to_hub: Optional[str] = typer.Option(None, "--push-to-hub", help="Upload the export folder (card with the Hub "
                                              "header) to this dataset repository OWNER/NAME; token from $HF_TOKEN."),
    private: bool = typer.Option(False, "--private", help="With --push-to-hub: create the repository private."),
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
    if push_to_hub:
        from synthrank.hub import push_folder

        typer.echo(f"pushed: {push_folder(out, push_to_hub, 'dataset', private=private)}")


def diagnose(
    export: Path = typer.Option(..., exists=True, file_okay=False, help="Export folder (corpus.jsonl, qrels/train.tsv)."),
    queries: Path = typer.Option(..., help="Queries file the set was generated for."),
    split: Optional[str] = typer.Option(None),
    judges: str = typer.Option("bm25,dense", help="Comma-separated judges: bm25, dense (offline all-MiniLM-L6-v2), dense:MODEL (any sentence-transformers folder or hub id), llm (an LLM grading 0-3, see --llm-model)."),
    out: Optional[Path] = typer.Option(None, help="Where to write diagnose.json/.md/.png (default: the export folder)."),
    base_model: Optional[str] = typer.Option(None, help="Also measure informativeness: the share of labeled pairs this model (the one you will train) misorders; and check labels against it and BM25."),
    write_checked: bool = typer.Option(False, help="With --base-model: write qrels/checked.tsv, the qrels without passages whose level both judges contradict (train with split: checked)."),
    **llm_options,
) -> None:
    """Score every passage against its query with independent judges; report per-level means and Kendall tau."""
    from synthrank.generate.diagnose import diagnose_export, render_diagnose_table, render_informativeness_table

    loaded = _load(queries, split, None)[1]
    judge_list = [j.strip() for j in judges.split(",") if j.strip()]
    llm = None
    if "llm" in judge_list:
        if not llm_options.get("llm_model"):
            _fail("--judges llm needs --llm-model (another model than the generator)")
        try:
            llm = build_options(LLMJudgeOptions, llm_options, flag_prefix=_LLM)
        except ValueError as err:
            _fail(str(err))
    report = diagnose_export(export, loaded, judge_list, out or export, base_model=base_model, write_checked=write_checked,
                             llm_judge=llm)
    typer.echo(render_diagnose_table(report))
    if "informativeness" in report:
        typer.echo("\n" + render_informativeness_table(report["informativeness"]))
        check = report["label_check"]
        typer.echo(f"\nlabel check: {check['contradicted']} of {check['of']} passages contradicted by bm25 and the base model "
                   f"(by level {check['by_level']})" + (f"; wrote {check['written']}" if "written" in check else ""))


generate_app.command("diagnose", epilog="Example:\n\n  synthrank generate diagnose --export data/synthetic/myset --queries queries.tsv")(
    exits_cleanly_on_bad_data(with_parameters(diagnose, model_parameters(LLMJudgeOptions, flag_prefix=_LLM))))


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
