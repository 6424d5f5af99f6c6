"""What a training run leaves for people: the loss-curve PNG and the model card section."""

from __future__ import annotations

import json
from pathlib import Path

from synthrank import __version__


def plot_loss_curve(log_history: list[dict], out_png: Path, title: str = "training loss") -> Path | None:
    """Training loss (and dev metrics, right axis) against optimizer step. None if nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    losses = [(row["step"], row["loss"]) for row in log_history if "loss" in row and "step" in row]
    dev = [(row["step"], k, v) for row in log_history for k, v in row.items() if k.startswith("eval_dev_") and isinstance(v, (int, float))]
    if not losses and not dev:
        return None
    figure = Figure(figsize=(6, 3.5))
    axis = figure.add_subplot()
    if losses:
        axis.plot(*zip(*losses), marker=".", color="tab:blue", label="training loss")
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("loss")
    axis.set_title(title)
    if dev:
        right = axis.twinx()
        for name in sorted({k for _, k, _ in dev}):
            points = [(s, v) for s, k, v in dev if k == name]
            right.plot(*zip(*points), marker="o", linestyle="--", label=name.removeprefix("eval_"))
        right.set_ylabel("dev metric")
        right.legend(loc="upper right", fontsize=8)
    axis.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(out_png, dpi=120)
    return out_png


def write_model_card_section(model_dir: Path, config, context_stats: dict, final_dev: dict | None, steps: int,
                             precision: str = "fp32") -> None:
    """Append a "Trained with synthrank" section (data, loss, config, dev result) to README.md."""
    readme = Path(model_dir) / "README.md"
    sources = "\n".join(f"- `{s.name}`: `{s.data}` (split {s.split}; relabel {s.relabel or 'none'}; keep levels {s.keep_levels or 'all'})" for s in config.sources)
    lines = [
        "",
        "## Trained with synthrank",
        "",
        f"synthrank {__version__}; base model `{config.base_model}`; {steps} optimizer steps; precision {precision}; "
        f"similarity `{config.loss.similarity}` (saved as the model's similarity function).",
        "",
        f"**Loss**: `{config.loss.name}` (temperature {config.loss.temperature}, similarity {config.loss.similarity}"
        f"{', cached' if config.loss.cached else ''}); group size G = {config.context.group_size}, selection `{config.context.selection}`.",
        "",
        "**Data** (ranking-context sources):",
        sources,
        "",
        f"Training queries kept: {context_stats.get('queries_kept', '?')}; dropped: {json.dumps(context_stats.get('dropped', {}))}.",
        "",
    ]
    if final_dev:
        lines += ["**Dev evaluation** (end of training): " + ", ".join(f"{k} = {v:.4f}" for k, v in final_dev.items()), ""]
    lines += ["**Config**:", "", "```json", config.model_dump_json(indent=1), "```", ""]
    from synthrank.hub import with_header

    existing = readme.read_text(encoding="utf-8") if readme.exists() else f"# {Path(model_dir).name}\n"
    header = {"license": "apache-2.0", "tags": ["synthrank", "sentence-transformers", "sentence-similarity", "sycl"],
              "base_model": config.base_model if not Path(config.base_model).is_absolute() else None,
              "datasets": [str(s.data) for s in config.sources], "pipeline_tag": "sentence-similarity",
              "library_name": "sentence-transformers",
              "synthrank": {"loss": config.loss.name, "group_size": config.context.group_size, "steps": steps,
                            "precision": precision, "dev": final_dev}}
    readme.write_text(with_header(existing.rstrip() + "\n" + "\n".join(lines), header), encoding="utf-8")
