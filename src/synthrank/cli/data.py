"""``synthrank data validate`` and ``synthrank data stats``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from synthrank.cli.app import data_app
from synthrank.cli.errors import exits_cleanly_on_bad_data


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
    if report.without_text and any(report.without_text.values()):
        documents += f" ({report.without_text['title_only']} title-only, {report.without_text['empty']} empty: accepted)"
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


@data_app.command("get")
@exits_cleanly_on_bad_data
def data_get(
    name: str = typer.Argument(..., help="beir:NAME (or just NAME), hf:REPO[:QRELS_CONFIG], irds:ID, or the URL of a BEIR-layout zip."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Fetch a data set into the cache (once; later calls reuse it) and print its folder as the last line.

    **Examples**

    ```
    synthrank data get scifact
    synthrank data get hf:mteb/nfcorpus
    synthrank data get https://example.org/my-collection.zip
    synthrank evaluate -d beir:scifact      # the same folder, fetched on first use
    ```
    """
    from synthrank.data.named import is_named, resolve_dataset

    folder = resolve_dataset(name if is_named(name) else f"beir:{name}", progress=not quiet)
    print(folder)
