"""``<run_dir>/report.md``: one page per run, assembled from the stage manifests.

Sections (each only when its stage has run): stages and timings; generation counts, filter
reasons and per-level fidelity (table + ``diagnose.png``); mined negatives; training contexts
and the loss curve; the metric tables with paired significance against the base model and
against BM25, a bar chart and per-query difference plots; package versions. Images are linked
by relative paths, so the run folder can be moved or zipped as a whole.
"""

from __future__ import annotations

import os
from pathlib import Path

from synthrank.data.jsonl import atomic_write
from synthrank.run.config import STAGES, RunConfig
from synthrank.run.manifest import read_manifest


def _rel(path: str | Path, run_dir: Path) -> str:
    return Path(os.path.relpath(Path(path), run_dir)).as_posix()


def _stage_table(manifests: dict[str, dict]) -> list[str]:
    lines = ["| stage | status | started | seconds | attempts |", "|---|---|---|---:|---:|"]
    for stage, m in manifests.items():
        lines.append(f"| {stage} | {m.get('status')} | {m.get('started', '-')} | {m.get('seconds', '-')} | {m.get('attempts', 1)} |")
    return lines


def _generate_section(m: dict, run_dir: Path) -> list[str]:
    from synthrank.generate.diagnose import render_diagnose_table

    s = m.get("summary") or {}
    counts = s.get("counts", {})
    lines = ["## Generate", "",
             (f"Model `{s.get('model_id')}`, prompt `{m['config'].get('prompt')}`, levels {m['config'].get('levels')}, "
              f"{s.get('queries')} queries; this run generated {s.get('done_rows')} rows "
              f"({s.get('failed_rows')} failed) at {s.get('tokens_per_s')} tokens/s.")]
    if counts:
        filters = ", ".join(f"{k} {v}" for k, v in counts.get("filters", {}).items() if k != "kept" and v) or "none"
        lines.append(f"Kept {counts.get('kept')} of {counts.get('rows')} passages (filtered: {filters}).")
    fidelity = s.get("fidelity")
    if fidelity:
        lines += ["", ("Level fidelity (independent judges score every kept passage against its query; Kendall tau "
                       "between intended level and score, averaged over queries):"), "", render_diagnose_table(fidelity)]
        png = Path(m["outputs"]["export"]) / "diagnose.png"
        if png.is_file():
            lines += ["", f"![scores by level]({_rel(png, run_dir)})"]
        if fidelity.get("informativeness"):
            from synthrank.generate.diagnose import render_informativeness_table

            lines += ["", render_informativeness_table(fidelity["informativeness"])]
        check = fidelity.get("label_check")
        if check:
            lines += ["", f"Label check: {check['contradicted']} of {check['of']} passages contradicted ({check['rule']}); "
                          f"by level {check['by_level']}; qrels without them: `qrels/checked.tsv` (train with `split: checked`)."]
    return lines + [""]


def _mine_section(m: dict) -> list[str]:
    s = m.get("summary") or {}
    return ["## Mine", "", (f"{s.get('pairs')} hard negatives for {s.get('queries', 0) - s.get('queries_without_negatives', 0)} of "
                            f"{s.get('queries')} queries ({s.get('queries_short')} with fewer than asked); skipped "
                            f"{s.get('positives_skipped')} known positives and {s.get('zero_score_skipped')} zero-score documents. "
                            f"Settings: {s.get('settings')}."), ""]


def _train_section(m: dict, run_dir: Path) -> list[str]:
    from synthrank.train.contexts import ContextStats

    s = m.get("summary") or {}
    cfg = m.get("config", {})
    resumed = f" (resumed from {Path(s['resumed_from']).name})" if s.get("resumed_from") else ""
    lines = ["## Train", "",
             (f"Base `{s.get('base_model')}`, loss `{cfg.get('loss', {}).get('name')}` "
              f"(temperature {cfg.get('loss', {}).get('temperature')}, {cfg.get('loss', {}).get('similarity')}), "
              f"{s.get('steps')} steps of {cfg.get('training', {}).get('batch_size')} queries, {s.get('train_seconds')} s{resumed}."), ""]
    try:
        lines += ["```", ContextStats(**s["context_stats"]).render(), "```", ""]
    except (KeyError, TypeError):
        pass
    curve = Path(m.get("outputs", {}).get("loss_curve", ""))
    if curve.is_file():
        lines += [f"![loss curve]({_rel(curve, run_dir)})", ""]
    return lines


def _evaluate_section(m: dict, run_dir: Path) -> list[str]:
    s = m.get("summary") or {}
    lines = ["## Evaluate", ""]
    settings = s.get("settings") or {}
    if settings:
        lines += ["Encoding settings (every dense system encoded with the same max length, precision and depth; "
                  "each searched with the similarity it was trained for):", "",
                  "| system | max_seq_length | precision | similarity | top_k |", "|---|---:|---|---|---:|"]
        for system, v in settings.items():
            lines.append(f"| {system} | {v.get('max_seq_length', '-')} | {v.get('precision', '-')} | "
                         f"{v.get('similarity', v.get('fields', '-'))} | {v.get('top_k', '-')} |")
        lines.append("")
    for baseline, text in (s.get("markdown") or {}).items():
        lines += [f"Against {'the base model' if baseline == 'base' else 'BM25'}:", "", text.strip(), ""]
    values = s.get("values") or {}
    if values:
        metrics = list(next(iter(values.values())))
        lines += ["All metrics:", "", "| system | dataset | " + " | ".join(metrics) + " |", "|---|---|" + "---:|" * len(metrics)]
        for key, vals in values.items():
            system, dataset, split = key.split("|")
            lines.append(f"| {system} | {dataset} ({split}) | " + " | ".join(f"{vals[k]:.4f}" for k in metrics) + " |")
        lines.append("")
    evaluate_dir = run_dir / "evaluate"
    for name, caption in (("metrics.png", "metric per dataset"), ("per_query_vs_base.png", "per-query differences vs the base model"),
                          ("per_query_vs_bm25.png", "per-query differences vs BM25")):
        if (evaluate_dir / name).is_file():
            lines += [f"![{caption}](evaluate/{name})", ""]
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
    if "generate" in manifests:
        lines += _generate_section(manifests["generate"], run_dir)
    if "mine" in manifests:
        lines += _mine_section(manifests["mine"])
    if "train" in manifests:
        lines += _train_section(manifests["train"], run_dir)
    if "evaluate" in manifests:
        lines += _evaluate_section(manifests["evaluate"], run_dir)
        leakage = run_dir / "leakage.json"
        if leakage.is_file():
            import json

            counts = json.loads(leakage.read_text(encoding="utf-8"))
            lines += ["Evaluation queries also used as training queries (normalised text, checked before the run): "
                      + ", ".join(f"{k} {v['seen_in_training']} of {v['queries']}" for k, v in counts.items()) + ".", ""]
    versions = next(iter(manifests.values()), {}).get("versions") if manifests else None
    if versions:
        lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in versions.items() if v), ""]
    path = run_dir / "report.md"
    with atomic_write(path) as handle:
        handle.write("\n".join(lines))
    return path
