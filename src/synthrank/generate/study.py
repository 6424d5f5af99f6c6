"""Prompt and model study: generate with every (model, prompt) pair on the same queries, then compare
level fidelity (Kendall tau under independent judges), filter rejections and tokens/s, and
compare each model's prompts paired per query.

All pairs of one model share a store (one generation per prompt), so a study can be interrupted
and re-run: finished work is kept. Results go to ``out/study.json`` and ``out/study.md``.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from synthrank.data import DataFormatError, Query, atomic_write
from synthrank.generate.diagnose import fidelity
from synthrank.generate.export import filtered_items, summarize
from synthrank.generate.prompts import load_prompt
from synthrank.generate.runner import GenerationOptions, GenerationSettings, run_generation
from synthrank.generate.store import Store


def study_pair(model: str, prompt: str, queries: list[Query], all_queries: dict[str, Query], out: Path,
               threads: int | None, n_parallel: int, judges: list[str], levels: list[int]) -> dict:
    """Generate (resuming) and measure one (model, prompt) pair; returns one table row as a dict."""
    from synthrank.generate.backends.embedded import EmbeddedBackend

    settings = GenerationSettings(load_prompt(prompt), GenerationOptions(levels=levels, concurrency=n_parallel))
    with Store(out / f"{model.replace('/', '_')}.sqlite") as store:
        backend = EmbeddedBackend(model, threads=threads, n_parallel=n_parallel)

        async def main():
            try:
                return await run_generation(queries, backend, store, settings, progress=True)
            finally:
                await backend.aclose()

        start = time.perf_counter()
        summary = asyncio.run(main())
        wall = time.perf_counter() - start
    row = measure_generation(store.path, summary.gen_key, queries, all_queries, judges)
    row.update(model=model, prompt=prompt, wall_s=round(wall, 1),
               # completion tokens / wall time, only when this run generated every row (else None)
               tok_s_run=round(summary.tokens_per_s, 2) if summary.planned_rows == row["rows"] else None)
    return row


def measure_generation(store_path: Path, gen_key: str, queries: list[Query], all_queries: dict[str, Query],
                       judges: list[str]) -> dict:
    """Study measures of one generation of a store, restricted to ``queries`` (fidelity, filters, speed)."""
    with Store(store_path) as store:
        ids = {q.id for q in queries}
        items = [r for r in filtered_items(store, gen_key, all_queries) if r["query_id"] in ids]
        gen = next(g for g in store.generations() if g["gen_key"] == gen_key)
    counts = summarize(items)
    done = [r for r in items if r["status"] == "done"]
    toks = sum(r["completion_tokens"] or 0 for r in done)
    single = gen["prompt_kind"] == "single-call"  # one request per query: its rows share one latency
    calls = {(r["query_id"], None if single else (r["level"], r["idx"])): r["latency_s"] or 0 for r in done}
    lat = sum(calls.values())
    kept = [(r["query_id"], r["level"], r["passage"]) for r in items if r["filter"] is None]
    report = fidelity(kept, all_queries, judges)
    row = {"model": gen["model"].split("@")[0], "prompt": gen["prompt_name"], "queries": len(ids), "rows": counts["rows"],
           "failed": counts["failed"], "filtered": counts["done"] - counts["kept"], "kept": counts["kept"],
           "filters": {k: v for k, v in counts["filters"].items() if k != "kept" and v},
           "failure_reasons": counts["failure_reasons"], "tok_s_run": None,
           # completion tokens / request latency: the speed of one stream
           "tok_s_per_request": round(toks / lat, 2) if lat else None}
    for judge, j in report["judges"].items():
        row[f"{judge}_tau"] = j["kendall_tau_mean"]
        row[f"{judge}_tau_by_query"] = {q: round(t, 4) for q, t in j["_tau_by_query"].items()}
        row[f"{judge}_pair_acc"] = j["pair_accuracy"]
        row[f"{judge}_means"] = j["mean_by_level"]
        row["queries_with_tau"] = j["queries_with_tau"]
    if "dense" in judges:  # fidelity before filtering: separates the prompt's effect from the filters'
        all_done = [(r["query_id"], r["level"], r["passage"]) for r in done]
        row["dense_tau_all_done"] = fidelity(all_done, all_queries, ["dense"])["judges"]["dense"]["kendall_tau_mean"]
    return row


def render_study(rows: list[dict]) -> str:
    """Markdown table of study rows."""
    head = ("| model | prompt | queries | rows | failed | filtered | queries with tau | BM25 tau | dense tau | dense tau before filters | dense pair acc. | "
            "dense mean L3/L2/L1/L0 | tok/s per request | tok/s (run) | filter reasons |")
    lines = [head, "|" + "---|" * 15]
    for r in rows:
        means = "/".join(str(r.get("dense_means", {}).get(lv, "-")) for lv in ("3", "2", "1", "0"))
        lines.append(f"| {r['model']} | {r['prompt']} | {r['queries']} | {r['rows']} | {r['failed']} | {r['filtered']} | {r.get('queries_with_tau', '-')} | "
                     f"{r.get('bm25_tau')} | {r.get('dense_tau')} | {r.get('dense_tau_all_done', '-')} | {r.get('dense_pair_acc')} | {means} | "
                     f"{r['tok_s_per_request']} | {r['tok_s_run'] if r['tok_s_run'] is not None else '-'} | {', '.join(f'{k} {v}' for k, v in r['filters'].items()) or '-'} |")
    return "\n".join(lines)


def compare_prompts(rows: list[dict], judge: str | None = None, baseline: str = "per-level") -> list[dict]:
    """Each model's prompts against its ``baseline`` prompt, paired per query on ``judge``'s Kendall tau.

    ``judge`` None: ``dense`` when the rows have it, else the first judge they have.
    Only queries with a tau under both prompts count (a query needs >= 2 levels left after the
    filters). Returns one dict per (model, prompt != baseline) with the mean difference, its
    95 % bootstrap interval and the paired randomization p-value.
    """
    from synthrank.evaluate.significance import bootstrap_ci, paired_differences, randomization_test

    if judge is None:
        found = [k[: -len("_tau_by_query")] for r in rows for k in r if k.endswith("_tau_by_query")]
        judge = "dense" if "dense" in found else (found[0] if found else "dense")
    key = f"{judge}_tau_by_query"
    base = {r["model"]: r for r in rows if r["prompt"] == baseline}
    out = []
    for r in rows:
        ref = base.get(r["model"])
        if r["prompt"] == baseline or ref is None or key not in r or key not in ref:
            continue
        shared = sorted(r[key].keys() & ref[key].keys())
        entry = {"model": r["model"], "prompt": r["prompt"], "against": baseline, "judge": judge, "queries": len(shared),
                 "difference": None, "ci95": None, "p_randomization": None}
        if len(shared) >= 2:
            a = [r[key][q] for q in shared]
            b = [ref[key][q] for q in shared]
            entry["difference"] = round(float(paired_differences(a, b).mean()), 4)
            entry["ci95"] = [round(v, 4) for v in bootstrap_ci(a, b)]
            entry["p_randomization"] = round(randomization_test(a, b), 4)
        out.append(entry)
    return out


def render_comparisons(comparisons: list[dict]) -> str:
    """Markdown table of :func:`compare_prompts` rows."""
    lines = ["| model | prompt | against | judge | paired queries | tau difference | 95 % CI | p (randomization) |",
             "|" + "---|" * 8]
    for c in comparisons:
        ci = f"[{c['ci95'][0]}, {c['ci95'][1]}]" if c["ci95"] else "-"
        lines.append(f"| {c['model']} | {c['prompt']} | {c['against']} | {c['judge']} | {c['queries']} | {c['difference']} | {ci} | "
                     f"{c['p_randomization'] if c['p_randomization'] is not None else '-'} |")
    return "\n".join(lines)


def previous_rows(path: Path) -> dict[tuple[str, str], dict]:
    """Rows of an earlier ``study.json`` by (model, prompt); empty when there is none."""
    if not path.exists():
        return {}
    try:
        rows = json.loads(path.read_text())
        return {(r["model"], r["prompt"]): r for r in rows}
    except (ValueError, TypeError, KeyError) as err:
        raise DataFormatError(path, 0, "-", f"not a study.json written by synthrank ({err}); move it away to start afresh") from None


def keep_run_speed(row: dict, earlier: dict | None) -> dict:
    """A rerun that only measures (every row already generated) cannot time the generation:
    keep the whole-run tokens/s measured by the run that generated the same rows."""
    if row["tok_s_run"] is None and earlier and earlier.get("rows") == row["rows"] and earlier.get("tok_s_run") is not None:
        row["tok_s_run"] = earlier["tok_s_run"]
    return row


def run_study(models: list[str], prompts: list[str], queries: list[Query], all_queries: dict[str, Query], out: Path,
              threads: int | None = None, n_parallel: int = 2, judges=("bm25", "dense"), levels=(3, 2, 1, 0)) -> list[dict]:
    """Run every pair (resumable); write ``study.json`` and ``study.md`` after each pair.

    ``study.md`` holds the table and each prompt against ``per-level``, paired per query
    (:func:`compare_prompts`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    previous = previous_rows(out / "study.json")
    rows = []
    for model in models:
        for prompt in prompts:
            row = study_pair(model, prompt, queries, all_queries, out, threads, n_parallel, list(judges), list(levels))
            rows.append(keep_run_speed(row, previous.get((model, prompt))))
            with atomic_write(out / "study.json") as handle:
                json.dump(rows, handle, indent=1)
            with atomic_write(out / "study.md") as handle:
                handle.write(render_study(rows) + "\n\nEach prompt against `per-level`, paired per query:\n\n"
                             + render_comparisons(compare_prompts(rows)) + "\n")
    return rows
