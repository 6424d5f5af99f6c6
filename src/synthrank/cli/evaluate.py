"""``synthrank evaluate`` and ``synthrank compare``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from synthrank.cli.app import app
from synthrank.cli.errors import exits_cleanly_on_bad_data
from synthrank.cli.options import apply_data_root, build_options, data_root_parameter, model_parameters, with_parameters
from synthrank.evaluate.options import EvaluateOptions

console = Console(stderr=True)


def evaluate(
    data: Optional[list[str]] = typer.Option(None, "--data", "-d", show_default=False, help="BEIR folder or data set name "
                                             "(beir:NAME, hf:REPO, irds:ID, embedded); repeat for several, one table with the "
                                             "mean. Default: the embedded MEDLINE collection."),
    suite: Optional[list[str]] = typer.Option(None, "--suite", help="A named suite of data sets: beir-14 (the paper's "
                                              "zero-shot list), trec-dl. Repeatable; added after --data."),
    run_file: Optional[Path] = typer.Option(None, "--run", help="Score this TREC run file against the qrels instead of "
                                            "retrieving (--model names it in the output)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write run.trec, results.json and summary.md here "
                                       "(one folder per data set when there are several)."),
    as_json: bool = typer.Option(False, "--json", help="Print results.json to stdout instead of the summary "
                                 "(a list for several data sets)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    **options,
) -> None:
    """Retrieve with a model on BEIR splits and score it with trec_eval's metrics.

    **Examples**

    ```
    synthrank evaluate                                   # offline MiniLM on the embedded MEDLINE
    synthrank evaluate --model bm25 --data ../shared/data/scifact
    synthrank evaluate -m all-MiniLM-L6-v2 -d ../shared/data/trec-dl-2019-subset -l 2 --out runs/dl19
    synthrank evaluate -m runs/my-model -d beir:scifact -d beir:nfcorpus --out runs/eval
    synthrank evaluate -m runs/my-model --suite beir-14 --precision bf16
    synthrank evaluate -m my-system --run my.trec -d ../shared/data/scifact
    ```
    """
    from synthrank.evaluate.pipeline import evaluate as run_evaluation, score_run_file
    from synthrank.evaluate.report import render_summary_markdown, render_multi_dataset_table
    from synthrank.evaluate.suites import suite as suite_datasets

    apply_data_root(options.pop("data_root", None))
    base = build_options(EvaluateOptions, options)
    specs = [{"data": d} for d in data or []] + [s.model_dump(exclude_defaults=True) for name in suite or []
                                                 for s in suite_datasets(name)]
    runs = [base.model_copy(update={k: Path(v) if k == "data" else v for k, v in spec.items()}) for spec in specs] or [base]
    labels = _labels([str(o.data or "embedded") for o in runs])
    results = []
    for options_i, label in zip(runs, labels):
        out_i = (out / label if len(runs) > 1 else out) if out else None
        if run_file is not None:
            result = score_run_file(run_file, options=options_i, out_dir=out_i)
        else:
            result = run_evaluation(options=options_i, out_dir=out_i, progress=not quiet)
            if result.cache.get("corpus") == "hit":
                console.print(f"embedding cache: reused corpus vectors from {result.cache['path']}", highlight=False)
            elif result.cache.get("corpus") == "miss":
                console.print(f"embedding cache: no entry for this model and corpus; encoded and saved to {result.cache['path']}",
                              highlight=False)
        results.append(result.to_dict())
    if as_json:
        print(json.dumps(results[0] if len(results) == 1 else results, indent=1))
    elif len(results) == 1:
        print(render_summary_markdown(results[0]))
    else:
        print(render_multi_dataset_table(results))
    if out:
        console.print(f"wrote run.trec, results.json, summary.md under {out}", highlight=False)


def _labels(names: list[str]) -> list[str]:
    """Folder-safe, unique labels for the evaluated data sets (``beir:scifact`` -> ``scifact``)."""
    import re

    from synthrank.data.named import is_named

    tails = [re.sub(r"[^A-Za-z0-9._-]+", "_", n.split(":", 1)[-1].replace("/", "-") if is_named(n) and ":" in n
                    else Path(n.rstrip("/")).name) or "data" for n in names]
    return [f"{t}-{i}" if tails.count(t) > 1 else t for i, t in enumerate(tails)]


_EVALUATE_PARAMETERS = [data_root_parameter(), *model_parameters(
    EvaluateOptions, exclude={"data"}, short={"model": "-m", "relevance_level": "-l"})]
app.command()(exits_cleanly_on_bad_data(with_parameters(evaluate, _EVALUATE_PARAMETERS)))


@app.command()
@exits_cleanly_on_bad_data
def compare(
    results: list[Path] = typer.Argument(..., help="results.json files (or folders holding one), from `synthrank evaluate --out`."),
    metric: str = typer.Option("ndcg@10", help="Metric to compare."),
    baseline: Optional[str] = typer.Option(None, help="System name to test against (default: the first file's system)."),
    test: str = typer.Option("both", help="Significance test: t (paired t-test), randomization, or both (cells marked only when both agree)."),
    alpha: float = typer.Option(0.05, help="Significance level."),
    plot: Optional[Path] = typer.Option(None, help="Write a per-query difference plot (PNG) here."),
    as_json: bool = typer.Option(False, "--json", help="Print the table as JSON (every cell with its mean difference, "
                                 "p-values and verdict) instead of Markdown."),
) -> None:
    """Table several systems on several data sets, with paired significance tests against a baseline.

    **Examples**

    ```
    synthrank compare runs/bm25/results.json runs/minilm/results.json runs/trained/results.json
    synthrank compare runs/*/ --baseline bm25 --metric ndcg@10 --plot diff.png
    ```
    """
    paths = [p / "results.json" if p.is_dir() else p for p in results]
    if as_json:
        from synthrank.evaluate.compare import compare_results
        from synthrank.evaluate.results_files import load_results

        table = compare_results(load_results(paths), metric=metric, baseline=baseline, alpha=alpha, test=test)
        print(json.dumps(table.to_dict(), indent=1, ensure_ascii=False))
        return
    print(compare_command(paths, metric=metric, baseline=baseline, out_png=plot, alpha=alpha, test=test))


def compare_command(
    paths: list[str | Path],
    metric: str = "ndcg@10",
    baseline: str | None = None,
    out_png: str | Path | None = None,
    alpha: float = 0.05,
    test: str = "both",
    out_json: str | Path | None = None,
) -> str:
    """Run ``synthrank compare``: load files, compare, optionally plot and save JSON; return Markdown.

    The baseline defaults to the system of the first file. ``out_png`` gets the per-query
    difference plot (:func:`synthrank.evaluate.plots.plot_per_query_differences`), ``out_json``
    the table's :meth:`ComparisonTable.to_dict`. The returned text is the Markdown table followed
    by one line per written file. Errors are those of :func:`load_results` and
    :func:`compare_results`.
    """
    from synthrank.evaluate.compare import compare_results
    from synthrank.evaluate.results_files import load_results

    table = compare_results(load_results(paths), metric=metric, baseline=baseline, alpha=alpha, test=test)
    text = table.render_markdown()
    if out_png is not None:
        from synthrank.evaluate.plots import plot_per_query_differences  # matplotlib only when plotting

        written = plot_per_query_differences(table, None, None, out_png)
        text += f"\nPer-query differences plotted to {written}\n"
    if out_json is not None:
        out_json = Path(out_json)
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(table.to_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        text += f"\nComparison saved to {out_json}\n"
    return text
