"""The results page of a grid: Markdown section and plots from the ``grid.json`` object.

Contract: :func:`render_page` turns the summary of
:func:`~synthrank.run.grid_aggregate.aggregate` into one Markdown section (primary-metric table
with significance marks and legend, bar plots, all-metrics tables per dataset, ablation groups,
a learning curve for a ``data-size`` group, wall time, failures); its only side effect is the
PNGs in ``<page_dir>/results/<name>-*.png``, linked relative to ``page_dir``.
:func:`write_section` puts a section into a page between ``<!-- grid:NAME:start -->`` and
``<!-- grid:NAME:end -->``: the file is created if missing, the section appended if absent and
replaced if present, the rest of the file untouched (written atomically).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from synthrank.data.jsonl import atomic_write
from synthrank.systems import BASE, BM25

MARKS = {"reference": ("▲", "▼"), BASE: ("△", "▽")}


def _cell_text(summary: dict, name: str, ds: str, metric: str) -> str:
    entry = summary["systems"][name]["datasets"].get(ds)
    if entry is None or metric not in entry["mean"]:
        return "–"
    text = f"{entry['mean'][metric]:.3f}"
    if entry["std"] is not None:
        text += f" ± {entry['std'][metric]:.3f}"
    marks = ""
    for kind, (up, down) in MARKS.items():
        verdict = (entry.get("significance", {}).get(metric, {}).get(kind) or {}).get("verdict")
        marks += {"better": up, "worse": down}.get(verdict, "")
    text += f" {marks}" if marks else ""
    if summary["systems"][name]["kind"] == "run" and entry["n_seeds"] < len(summary["seeds"]):
        text += f" (n={entry['n_seeds']})"
    return text


def _row_label(summary: dict, name: str) -> str:
    label = summary["systems"][name]["label"].replace("|", "\\|")
    return f"{label} (reference)" if name == summary["reference"] else label


def _table(summary: dict, names: list[str], columns: list[str], cell) -> list[str]:
    lines = ["| system | " + " | ".join(columns) + " |", "|---|" + "---:|" * len(columns)]
    return lines + [f"| {_row_label(summary, n)} | " + " | ".join(cell(n, c) for c in columns) + " |" for n in names]


def _legend(summary: dict) -> str:
    parts = []
    if summary["reference"]:
        parts.append(f"▲/▼ significantly better/worse than the reference {summary['reference_label']!r}")
    if BASE in summary["systems"]:
        parts.append("△/▽ significantly better/worse than the base model `base`")
    seeds = ", ".join(map(str, summary["seeds"]))
    return (f"Mean ± sample standard deviation over seeds {seeds} (baselines have no seed). "
            + ("; ".join(parts) + ": " if parts else "")
            + "p < 0.05 in both a paired t-test and a paired randomization test (10000 resamples) on the per-query "
            "scores averaged over seeds, no correction for multiple comparisons. (n=k): only k seeds finished.")


def _machine_warning(summary: dict) -> list[str]:
    """A paragraph naming the machines when the page's cells were evaluated on more than one ([] otherwise)."""
    where: dict[str, list[str]] = {}
    for name, system in summary["systems"].items():
        for seed, machine in (system.get("machines") or {}).items():
            cell = name if seed == "-" else f"{name} seed {seed}"
            where.setdefault(machine or "not recorded", []).append(cell)
    if len(where) < 2:
        return []
    listed = "; ".join(f"{machine}: {', '.join(cells)}" for machine, cells in where.items())
    return [(f"**Warning: these cells were evaluated on different machines** ({listed}). The same model's scores "
             "differ slightly between CPUs and GPUs (bf16 and fp32 kernels differ; the base model's nDCG@10 moved by "
             "up to 0.003 between two CPUs here), so differences of that size between systems are not comparable. "
             "Rerun the cells on one machine for a clean comparison."), ""]


def _bars(path: Path, title: str, metric: str, panels: list[tuple[str, list[tuple[str, float, float | None, str]]]]) -> Path:
    """Horizontal bars (label, mean, std, colour) with std error bars, one panel per dataset."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from synthrank.evaluate.plots import _save

    rows = max(len(bars) for _, bars in panels)
    figure = Figure(figsize=(6.4 * len(panels), 1.0 + 0.38 * rows), layout="constrained")
    FigureCanvasAgg(figure)
    for ax, (panel, bars) in zip(figure.subplots(1, len(panels), squeeze=False)[0], panels):
        ys = np.arange(len(bars))[::-1]
        means = [b[1] for b in bars]
        ax.barh(ys, means, xerr=[b[2] or 0.0 for b in bars], color=[b[3] for b in bars], capsize=3)
        ax.set_yticks(ys, [b[0] for b in bars], fontsize=8)
        for y, (_, mean, std, _) in zip(ys, bars):
            ax.text(mean + (std or 0.0), y, f" {mean:.3f}", va="center", fontsize=7)
        ax.set_xlabel(metric)
        ax.set_title(f"{title}: {panel}", fontsize=9)
        ax.margins(x=0.15)
    return _save(figure, path)


def _colour(system: dict) -> str:
    return "#9e9e9e" if system["kind"] == "baseline" else "#4c72b0"


def _learning_curve(path: Path, summary: dict, names: list[str], metric: str) -> Path | None:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from synthrank.evaluate.plots import _save

    figure = Figure(figsize=(6.0, 4.0), layout="constrained")
    FigureCanvasAgg(figure)
    ax = figure.subplots()
    drawn = False
    for ds in summary["datasets"]:
        points = sorted(((s["generate_limit"], s["datasets"][ds]) for n in names if (s := summary["systems"][n])["generate_limit"]
                         and ds in s["datasets"] and metric in s["datasets"][ds]["mean"]), key=lambda p: p[0])
        if points:
            drawn = True
            ax.errorbar([p[0] for p in points], [p[1]["mean"][metric] for p in points], capsize=3, marker="o", label=ds,
                        yerr=[(p[1]["std"] or {}).get(metric, 0.0) for p in points])
        for name, style in ((BASE, ":"), (BM25, "--")):
            base = summary["systems"].get(name, {}).get("datasets", {}).get(ds)
            if points and base and metric in base["mean"]:
                ax.axhline(base["mean"][metric], linestyle=style, color="gray", linewidth=1, label=f"{name} ({ds})")
    if not drawn:
        return None
    ax.set_xlabel("generated queries (generate.limit)")
    ax.set_ylabel(metric)
    ax.set_title(f"{summary['name']}: {metric} vs training-set size")
    ax.legend(fontsize=8)
    return _save(figure, path)


def _comparisons(summary: dict) -> list[str]:
    """The table of the grid's extra paired tests (``comparisons``), or nothing."""
    rows = summary.get("comparisons") or []
    if not rows:
        return []
    label = lambda n: summary["systems"][n]["label"].replace("|", "\\|")
    p = lambda v: "–" if v is None else f"{v:.3g}"
    lines = [f"### Paired comparisons ({summary['metric']})", "",
             "| system | against | dataset | difference | p (t-test) | p (randomization) | verdict |", "|---|---|---|---:|---:|---:|---|"]
    lines += [f"| {label(r['system'])} | {label(r['against'])} | {r['dataset']} | {r['mean_difference']:+.4f} | {p(r['p_t'])} | "
              f"{p(r['p_randomization'])} | {r['verdict'] or 'not significant'} |" for r in rows]
    return lines + ["", "Same tests as the marks above, on the per-query scores averaged over seeds.", ""]


def render_page(summary: dict, page_dir: Path, command: str | None = None) -> str:
    """The Markdown section of a grid; writes its plots to ``<page_dir>/results/<name>-*.png``."""
    metric, name, systems = summary["metric"], summary["name"], summary["systems"]
    plots = Path(page_dir) / "results"
    rel = lambda p: Path(os.path.relpath(p, page_dir)).as_posix()
    baselines = [n for n, s in systems.items() if s["kind"] == "baseline"]
    main = baselines + [n for n, s in systems.items() if s["kind"] == "run" and not s["group"]]
    groups = list(dict.fromkeys(s["group"] for s in systems.values() if s["group"]))
    lines = [f"## Grid `{name}`", ""]
    if summary["description"]:
        lines += [summary["description"].strip(), ""]
    if command:
        lines += [f"Regenerate: `{command}`", ""]
    lines += [f"### {metric}", ""]
    lines += _table(summary, main, summary["datasets"], lambda n, ds: _cell_text(summary, n, ds, metric))
    lines += ["", _legend(summary), ""]
    lines += _machine_warning(summary)
    for ds in summary["datasets"]:
        bars = [(systems[n]["label"], d["mean"][metric], (d["std"] or {}).get(metric), _colour(systems[n])) for n in main
                if (d := systems[n]["datasets"].get(ds)) and metric in d["mean"]]
        if bars:
            png = _bars(plots / f"{name}-{ds}.png", name, metric, [(ds, bars)])
            lines += [f"![{metric} on {ds}]({rel(png)})", ""]
    lines += _comparisons(summary)
    for ds in summary["datasets"]:
        names = [n for n in systems if ds in systems[n]["datasets"]]
        lines += [f"### All metrics: {ds}", ""]
        lines += _table(summary, names, summary["metrics"], lambda n, m, ds=ds: _cell_text(summary, n, ds, m)) + [""]
    for group in groups:
        members = [n for n, s in systems.items() if s["group"] == group]
        context = [n for n in [summary["reference"]] if n and n not in members]
        lines += [f"### Ablation: {group}", ""]
        lines += _table(summary, context + members, summary["datasets"], lambda n, ds: _cell_text(summary, n, ds, metric)) + [""]
        panels = [(ds, [(systems[n]["label"], d["mean"][metric], (d["std"] or {}).get(metric), _colour(systems[n])) for n in context + members
                        if (d := systems[n]["datasets"].get(ds)) and metric in d["mean"]]) for ds in summary["datasets"]]
        panels = [p for p in panels if p[1]]
        if panels:
            lines += [f"![{group}]({rel(_bars(plots / f'{name}-ablation-{group}.png', group, metric, panels))})", ""]
        if group == "data-size" and (png := _learning_curve(plots / f"{name}-learning-curve.png", summary, members, metric)):
            lines += [f"![learning curve]({rel(png)})", ""]
    lines += ["### Wall time", "", "| run | seeds done | mean s per seed | total s |", "|---|---:|---:|---:|"]
    for n, s in systems.items():
        if s["kind"] == "run":
            done = max((d["n_seeds"] for d in s["datasets"].values()), default=0)
            walls = [w for w in s["wall_seconds"].values() if w > 0]  # seeds not run yet have no time
            mean = f"{np.mean(walls):.0f}" if walls else "–"
            lines.append(f"| {_row_label(summary, n)} | {done} | {mean} | {sum(walls):.0f} |")
    if baselines:
        lines.append(f"| baselines ({', '.join(baselines)}) | – | – | {systems[baselines[0]]['wall_seconds']['-']:.0f} |")
    hw = summary["hardware"]
    lines += ["", ("Stage seconds from the run folders' manifests (the last execution of each stage; shared generate/mine "
                   "stages count in the folder that ran them). Page rendered "
                   f"{summary['written']} on {hw['platform']}, {hw['cpu']}, {hw['cpu_count']} CPUs, torch threads {hw['torch_threads']}."), ""]
    failures = [c for c in summary["cells"] if c["status"] == "failed"]
    if failures:
        lines += ["### Failures", ""] + [f"- `{c['key']}`: {c['error']}" for c in failures] + [""]
    return "\n".join(lines)


def write_section(path: Path, name: str, text: str) -> Path:
    """Put ``text`` between the grid's markers in ``path``: replace that section, or append it, or create the file."""
    start, end = f"<!-- grid:{name}:start -->", f"<!-- grid:{name}:end -->"
    block = f"{start}\n{text.rstrip()}\n{end}"
    path = Path(path)
    old = path.read_text(encoding="utf-8") if path.is_file() else None
    if old is None:
        new = block + "\n"
    elif start in old:
        i = old.index(start)
        j = old.find(end, i)
        if j < 0:
            raise ValueError(f"{path}: {start} has no matching {end}; fix the file by hand")
        new = old[:i] + block + old[j + len(end):]
    else:
        new = old.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as handle:
        handle.write(new)
    return path
