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
