"""``<run_dir>/report.md``: one page per run, assembled from the stage manifests.

Sections (each only when its stage has run; each stage writes its own, see ``Stage.report``):
stages and timings; generation counts, filter
reasons and per-level fidelity (table + ``diagnose.png``); mined negatives; training contexts
and the loss curve; the metric tables with paired significance against the base model and
against BM25, a bar chart and per-query difference plots; package versions. Images are linked
by relative paths, so the run folder can be moved or zipped as a whole.
"""

from __future__ import annotations

from pathlib import Path

from synthrank.data.jsonl import atomic_write
from synthrank.run.config import RunConfig
from synthrank.run.manifest import read_manifest
from synthrank.run.stages import STAGES


def _stage_table(manifests: dict[str, dict]) -> list[str]:
    lines = ["| stage | status | started | seconds | attempts |", "|---|---|---|---:|---:|"]
    for stage, m in manifests.items():
        lines.append(f"| {stage} | {m.get('status')} | {m.get('started', '-')} | {m.get('seconds', '-')} | {m.get('attempts', 1)} |")
    return lines


def write_report(config: RunConfig, run_dir: Path, preface: str = "") -> Path:
    """(Re)write ``report.md`` from the manifests present; returns its path."""
    manifests = {stage: m for stage in STAGES if (m := read_manifest(run_dir / stage))}
    lines = [f"# Run `{config.name}`", ""]
    if config.description:
        lines += [config.description.strip(), ""]
    if preface:
        lines += [preface.strip(), ""]
    lines += _stage_table(manifests) + [""]
    for stage, manifest in manifests.items():
        lines += STAGES[stage].report(manifest, run_dir)
    versions = next(iter(manifests.values()), {}).get("versions") if manifests else None
    if versions:
        lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in versions.items() if v), ""]
    path = run_dir / "report.md"
    with atomic_write(path) as handle:
        handle.write("\n".join(lines))
    return path
