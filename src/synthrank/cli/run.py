"""``synthrank run``, ``synthrank quickstart`` and ``synthrank grid``."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from synthrank.cli.app import app
from synthrank.cli.errors import exits_cleanly_on_bad_data
from synthrank.cli.options import apply_data_root


@app.command()
@exits_cleanly_on_bad_data
def run(
    config: Path = typer.Argument(..., help="Run config YAML (see docs/run.md and configs/)."),
    stages: Optional[str] = typer.Option(None, "--stages", help="Comma-separated subset of generate,mine,train,evaluate (default: the config's)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a config field: dotted.key=value (value parsed as YAML), e.g. train.training.max_steps=10. Repeatable."),
    force: Optional[str] = typer.Option(None, "--force", help="Comma-separated stages to rerun even when unchanged."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Folder where relative data set paths are looked up (default $SYNTHRANK_DATA)."),
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

    apply_data_root(data_root)
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


GRID_EPILOG = """Examples:

  synthrank grid configs/grids/scifact-static.yaml --dry-run

  synthrank grid configs/grids/scifact-static.yaml --report docs/results.md

  synthrank grid configs/grids/scifact-static.yaml --only synthetic-kl,baselines --report docs/results.md
"""


@app.command(epilog=GRID_EPILOG)
@exits_cleanly_on_bad_data
def grid(
    grid: Path = typer.Argument(..., help="Grid YAML: runs (run configs + overrides) x seeds, baselines, reference."),
    report: Path | None = typer.Option(None, "--report", help="Markdown page to write the grid's section into, between the HTML comments grid:NAME:start and grid:NAME:end (the rest of the page is kept); plots go to the folder results/ next to it."),
    only: str | None = typer.Option(None, "--only", help="Comma-separated run names (or `baselines`) to run; the page still shows every cell found on disk."),
    seeds: str | None = typer.Option(None, "--seeds", help="Comma-separated seeds to run (of the grid's); the page still shows every cell found on disk."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the cells and their overrides; run nothing."),
    render_only: bool = typer.Option(False, "--render-only", help="Run nothing; rewrite grid.json and the page from the cells on disk (e.g. after editing the grid's comparisons)."),
    data_root: Optional[Path] = typer.Option(None, "--data-root", help="Folder where relative data set paths are looked up (default: the grid's data_root, else $SYNTHRANK_DATA)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Only the one-line-per-cell progress (no stage logs, no progress bars)."),
) -> None:
    """Run an experiment grid (run configs x seeds + baselines) and render its results page.

    Every cell is an ordinary `synthrank run` folder OUT/RUN/seed-SEED (resumable, skipped when
    unchanged); OUT/grid.json holds every number (mean, sample std and per-seed values of every
    metric, significance against the reference run and the base model), OUT/results.md the page.
    A failed cell is reported and the others go on; the exit status is then 1.
    """
    from synthrank.run.grid import describe_cells, load_grid_config, plan_cells, run_grid, use_data_root

    only_list = [s.strip() for s in only.split(",") if s.strip()] if only else None
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()] if seeds else None
    except ValueError:
        raise typer.BadParameter(f"not a comma-separated list of integers: {seeds!r}", param_hint="--seeds") from None
    if dry_run:
        spec, base_dir = load_grid_config(grid)
        use_data_root(spec, base_dir, data_root)
        print(describe_cells(plan_cells(spec, base_dir, only_list, seed_list)))
        return
    quiet_log = (lambda message: None) if quiet else None
    outcome = run_grid(grid, only=only_list, report=report, progress=not quiet, log=quiet_log,
                       echo=lambda line: print(line, flush=True), seeds=seed_list, render_only=render_only,
                       data_root=data_root)
    print(f"grid.json: {outcome.out / 'grid.json'}\npage: {outcome.page}" + (f"\nreport: {outcome.report}" if outcome.report else ""))
    if outcome.failures:
        print(f"{len(outcome.failures)} cell(s) failed: {', '.join(c.key for c in outcome.failures)}", file=sys.stderr)
        raise typer.Exit(1)
