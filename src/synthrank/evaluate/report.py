"""Rendering of one evaluation's results as markdown."""

from __future__ import annotations


def render_summary_markdown(results: dict) -> str:
    """Markdown: a header naming model and data, a metric table, timings and cache use."""
    metrics = results["metrics"]
    lines = [
        f"# {results['model']} on {results['dataset']} ({results['split']})",
        "",
        f"- data: `{results['data']}`; queries: {len(results['per_query'])}; binary relevance: label >= {results['relevance_level']}",
        "",
        "| " + " | ".join(metrics) + " |",
        "|" + "---|" * len(metrics),
        "| " + " | ".join(f"{v:.4f}" for v in metrics.values()) + " |",
        "",
        "timings (s): " + ", ".join(f"{k.removesuffix('_s')} {v:.1f}" for k, v in results["timings"].items()),
    ]
    if results.get("cache"):
        lines.append(f"embedding cache: corpus {results['cache'].get('corpus')}")
    return "\n".join(lines)


def render_multi_dataset_table(results: list[dict]) -> str:
    """Markdown: one row per data set (model, split, queries, every metric), then the unweighted mean."""
    metrics = [m for m in results[0]["metrics"] if all(m in r["metrics"] for r in results)]
    lines = [f"# {results[0]['model']} on {len(results)} data sets", "",
             "| data set | split | queries | " + " | ".join(metrics) + " |", "|---|---|---:|" + "---:|" * len(metrics)]
    for r in results:
        lines.append(f"| {r['dataset']} | {r['split']} | {len(r['per_query'])} | " + " | ".join(f"{r['metrics'][m]:.4f}" for m in metrics) + " |")
    means = [sum(r["metrics"][m] for r in results) / len(results) for m in metrics]
    lines.append("| **mean** | | | " + " | ".join(f"**{v:.4f}**" for v in means) + " |")
    return "\n".join(lines)
