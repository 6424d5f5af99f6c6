"""``synthrank run``: the stages of a run config, each skipped when its inputs and config are unchanged.

For each selected stage, in pipeline order (generate -> mine -> train -> evaluate; the registry
of :mod:`synthrank.run.stages`):

1. hash the stage's inputs (content of files and folders) and config section into a fingerprint;
2. ``<run_dir>/<stage>/manifest.json`` says ``done`` with the same fingerprint: skip the stage;
3. a manifest with another fingerprint (config or inputs changed): the old train or evaluate
   folder is moved aside to ``<stage>.stale-<time>`` (nothing is deleted), then the stage runs;
   a stage with ``keep_on_change`` (generate) keeps its folder: its store holds every generation apart;
4. the same fingerprint but not ``done`` (killed, failed): the stage runs again and resumes
   (missing generation rows, last checkpoint, missing evaluations);
5. the manifest is written ``running`` before and ``done``/``failed`` after, with versions,
   input hashes, the machine (CPU, GPU), timings, outputs and a summary.

Steps 2-5 run under an exclusive lock, ``<run_dir>/.<stage>.lock`` (``filelock``): a second process on
the same run folder (the same config started twice, or two ``synthrank grid --seeds N`` sharing the
first seed's generate stage) waits for the first, then finds the stage done and skips it, instead of
running it a second time into the same store and folders. Under torchrun only rank 0 takes it.

Finally ``<run_dir>/report.md`` is (re)written from whatever manifests exist. Under ``torchrun``
(WORLD_SIZE > 1) only the train stage may run; rank 0 writes the manifests.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
import traceback
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from filelock import FileLock, Timeout

from synthrank import __version__
from synthrank.run.config import RunConfig
from synthrank.run.manifest import (
    ContentHasher,
    fingerprint,
    is_main_process,
    machine_info,
    now_iso,
    package_versions,
    read_manifest,
    write_manifest,
)
from synthrank.run.stages import STAGES

@dataclass
class StageOutcome:
    stage: str
    action: str  # "skipped" | "ran" | "resumed"
    seconds: float
    manifest: dict


@dataclass
class RunOutcome:
    run_dir: Path
    stages: list[StageOutcome] = field(default_factory=list)
    report: Path | None = None


def plan_stage(config: RunConfig, stage: str, base_dir: Path, hasher: ContentHasher) -> tuple[str, dict, dict, dict]:
    """``(fingerprint, stage config, input hashes, input paths)`` of a stage as it would run now."""
    section = STAGES[stage].section_config(config, base_dir)
    paths = STAGES[stage].inputs(config, base_dir)
    inputs = {name: hasher.path(path) for name, path in paths.items()}
    return fingerprint(stage, section, inputs, __version__), section, inputs, {k: str(v) for k, v in paths.items()}


@contextmanager
def _stage_lock(run_dir: Path, stage: str, log):
    """Hold ``<run_dir>/.<stage>.lock`` for the body; when another process holds it, say so and wait."""
    lock = FileLock(run_dir / f".{stage}.lock")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log(f"[{stage}] another synthrank process is running this stage in {run_dir}: waiting for it to finish")
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _set_aside(stage_dir: Path) -> Path:
    stale = stage_dir.with_name(f"{stage_dir.name}.stale-{time.strftime('%Y%m%d-%H%M%S')}")
    shutil.move(str(stage_dir), stale)
    return stale


def run_pipeline(config: RunConfig, base_dir: Path, stages: list[str] | None = None, force: list[str] | None = None,
                 progress: bool = True, log=None) -> RunOutcome:
    """Run the selected stages (see the module docstring); ``force`` reruns stages even when done."""
    from synthrank.run.report import write_report

    log = log or (lambda message: print(message, file=sys.stderr))
    selected = config.selected_stages(stages)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and selected != ["train"]:
        raise ValueError("under torchrun only the train stage can run: add --stages train "
                         "(run generate/mine before and evaluate after, without torchrun)")
    run_dir = config.folder()
    main = is_main_process()
    from synthrank.run.leakage import check_run_leakage

    check_run_leakage(config, base_dir, write=main)  # before any stage: a leaking run never starts
    run_dir.mkdir(parents=True, exist_ok=True)
    hasher = ContentHasher(run_dir / ".hash-cache.json")
    outcome = RunOutcome(run_dir)
    for stage in selected:
        with _stage_lock(run_dir, stage, log) if main else nullcontext():
            outcome.stages.append(_run_stage(config, base_dir, stage, run_dir, hasher, main, force, progress, log))
    if main:
        outcome.report = write_report(config, run_dir)
    return outcome


def _run_stage(config: RunConfig, base_dir: Path, stage: str, run_dir: Path, hasher: ContentHasher, main: bool,
               force: list[str] | None, progress: bool, log) -> StageOutcome:
    """Steps 1-5 of the module docstring for one stage (the caller holds the stage's lock)."""
    stage_dir = run_dir / stage
    started = time.perf_counter()
    key, section, inputs, input_paths = plan_stage(config, stage, base_dir, hasher)
    if main:
        hasher.save()
    previous = read_manifest(stage_dir)
    if previous and previous.get("fingerprint") == key and previous.get("status") == "done" and stage not in (force or []):
        log(f"[{stage}] unchanged since {previous.get('finished')}: skipped ({stage_dir}/manifest.json)")
        return StageOutcome(stage, "skipped", 0.0, previous)
    action = "ran"
    if previous and previous.get("fingerprint") != key and not STAGES[stage].keep_on_change and stage_dir.exists() and main:
        log(f"[{stage}] config or inputs changed: previous output moved to {_set_aside(stage_dir)}")
    elif previous and previous.get("fingerprint") == key and previous.get("status") != "done":
        action = "resumed"
        log(f"[{stage}] resuming an interrupted run ({previous.get('status')} since {previous.get('started')})")
    attempts = previous.get("attempts", 0) + 1 if previous and previous.get("fingerprint") == key else 1
    manifest = {"stage": stage, "status": "running", "fingerprint": key, "config": section, "inputs": inputs,
                "input_paths": input_paths, "versions": package_versions(), "machine": machine_info(),
                "started": now_iso(), "attempts": attempts}
    if main:
        write_manifest(stage_dir, manifest)
    log(f"[{stage}] {'resuming' if action == 'resumed' else 'running'} -> {stage_dir}")
    try:
        outputs, summary = STAGES[stage].execute(config, base_dir, progress)
    except BaseException as err:
        if main:
            manifest.update(status="failed", finished=now_iso(), seconds=round(time.perf_counter() - started, 1),
                            error=f"{type(err).__name__}: {err}", traceback=traceback.format_exc(limit=8))
            write_manifest(stage_dir, manifest)
        raise
    manifest.update(status="done", finished=now_iso(), seconds=round(time.perf_counter() - started, 1), outputs=outputs, summary=summary)
    if main:
        write_manifest(stage_dir, manifest)
    log(f"[{stage}] done in {manifest['seconds']:.0f} s")
    return StageOutcome(stage, action, manifest["seconds"], manifest)
