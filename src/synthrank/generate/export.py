"""Export a generation to a BEIR-style training set, and seed a store back from such an export.

Layout written to ``out``::

    corpus.jsonl        kept synthetic passages, ids  s-<gen8>-<query id>-L<level>-<idx>  (stable)
    qrels/train.tsv     query-id, corpus-id, level
    queries.ref.json    the queries' source file and ids (the real query text is not copied) -
                        or queries.jsonl with --include-query-text
    generations.jsonl   EVERY row of the generation (done, failed, filtered) with raw answers,
                        tokens, latency and filter reason - enough to rebuild the store
    generation.json     the generation's definition (model, prompt, sampling)
    card.json, README.md  dataset card: model, prompt hash, sampling, counts, filters, fidelity
    hf/                 optional Hugging Face ``datasets`` folder (save_to_disk)

``diagnose.json`` in ``out`` (written by ``synthrank generate diagnose``) is folded into the card.
All files are written atomically; re-exporting overwrites them with the same ids.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from synthrank.data import Query, atomic_write, write_jsonl, write_qrels_tsv
from synthrank.data.jsonl import remove_stale_temporaries
from synthrank.data.named import relative_to_data_root
from synthrank.generate.filters import CROSS_QUERY, CrossQueryIndex, FilterSettings, count_reasons, filter_query_passages
from synthrank.generate.levels import LEVEL_NAMES
from synthrank.generate.store import ITEM_COLUMNS, Store


def passage_id(gen_key: str, query_id: str, level: int, idx: int) -> str:
    """Stable corpus id of a synthetic passage."""
    return f"s-{gen_key[:8]}-{query_id}-L{level}-{idx}"


def filtered_items(store: Store, gen_key: str, queries: dict[str, Query],
                   settings: FilterSettings = FilterSettings()) -> list[dict]:
    """All items of a generation with a ``filter`` field (reason or None; failed rows get ``failed``)."""
    by_query: dict[str, list[dict]] = defaultdict(list)
    for row in store.items(gen_key):
        by_query[row["query_id"]].append(row)
    out = []
    seen = CrossQueryIndex(settings.near_dup) if settings.cross_query_dedupe else None
    order = {qid: i for i, qid in enumerate(queries)}  # with dedupe: queries in file order, the earlier one keeps it
    groups = sorted(by_query.items(), key=lambda item: order.get(item[0], len(order))) if seen is not None else by_query.items()
    for qid, rows in groups:
        query = queries.get(qid)
        done = [r for r in rows if r["status"] == "done"]
        reasons = filter_query_passages(query.text if query else "", [((r["level"], r["idx"]), r["passage"]) for r in done], settings)
        if seen is not None:
            kept = [r for r in done if reasons.get((r["level"], r["idx"])) is None]
            for r in kept:
                if seen.duplicates(r["passage"]):
                    reasons[(r["level"], r["idx"])] = CROSS_QUERY
            for r in kept:
                if reasons.get((r["level"], r["idx"])) is None:
                    seen.add(r["passage"])
        for r in rows:
            r["filter"] = reasons.get((r["level"], r["idx"])) if r["status"] == "done" else "failed"
            out.append(r)
    return out


def summarize(items: list[dict]) -> dict:
    """Counts per status, per level and per filter reason, and token/latency totals."""
    status = Counter(r["status"] for r in items)
    done = [r for r in items if r["status"] == "done"]
    per_level = {}
    for level in sorted({r["level"] for r in items}, reverse=True):
        rows = [r for r in items if r["level"] == level]
        per_level[str(level)] = {"rows": len(rows), "done": sum(r["status"] == "done" for r in rows),
                                 "kept": sum(r["filter"] is None for r in rows)}
    return {
        "queries": len({r["query_id"] for r in items}),
        "rows": len(items), "done": status.get("done", 0), "failed": status.get("failed", 0),
        "kept": sum(r["filter"] is None for r in items),
        "filters": count_reasons({i: r["filter"] for i, r in enumerate(done)}),
        "failure_reasons": dict(Counter((r["error"] or "").split(":")[0] for r in items if r["status"] == "failed")),
        "per_level": per_level,
        "completion_tokens": sum(r["completion_tokens"] or 0 for r in done),
        "mean_latency_s": round(sum(r["latency_s"] or 0 for r in done) / max(1, len(done)), 3),
    }


#: Files an export writes at its top level (see the module docstring).
EXPORT_FILES = ("corpus.jsonl", "queries.jsonl", "queries.ref.json", "generations.jsonl", "generation.json", "card.json",
                "README.md")


def export_generation(store: Store, gen_key: str, queries: dict[str, Query], out: Path, queries_source: str,
                      include_query_text: bool = False, hf: bool = False,
                      settings: FilterSettings = FilterSettings(), queries_split: str | None = None,
                      only_queries: set[str] | None = None) -> dict:
    """Write the export folder (see module doc) and return the card as a dict.

    Refuses (``ValueError``) to overwrite an export of a *different* generation: changing the
    prompt or the model must go to a new folder, not silently replace committed data.
    """
    out = Path(out)
    queries_source = relative_to_data_root(queries_source)
    previous = out / "generation.json"
    if previous.is_file():
        old_key = json.loads(previous.read_text()).get("gen_key")
        if old_key != gen_key:
            raise ValueError(f"{out} holds generation {old_key}, not {gen_key} (prompt or model changed?): "
                             "export to another folder or delete it first")
    (out / "qrels").mkdir(parents=True, exist_ok=True)
    # A kill during an earlier export left temporary files: this exporter owns the folder, so clear them.
    remove_stale_temporaries(out, EXPORT_FILES)
    remove_stale_temporaries(out / "qrels", ["train.tsv"])
    gen = next(g for g in store.generations() if g["gen_key"] == gen_key)
    items = filtered_items(store, gen_key, queries, settings)
    if only_queries is not None:  # e.g. the first N queries of a job whose store holds more (seeded from a bigger set)
        items = [r for r in items if r["query_id"] in only_queries]
    kept = [r for r in items if r["filter"] is None]
    write_jsonl(out / "corpus.jsonl", ({"_id": passage_id(gen_key, r["query_id"], r["level"], r["idx"]), "title": "",
                                        "text": r["passage"]} for r in kept))
    qrels: dict[str, dict[str, int]] = defaultdict(dict)
    for r in kept:
        qrels[r["query_id"]][passage_id(gen_key, r["query_id"], r["level"], r["idx"])] = r["level"]
    write_qrels_tsv(out / "qrels" / "train.tsv", dict(qrels))
    used = sorted({r["query_id"] for r in items})
    unknown = [q for q in used if q not in queries]
    if unknown:  # the export would name ids its queries source does not hold
        raise ValueError(f"{len(unknown)} of the {len(used)} queries in the store are not in {queries_source} (first: "
                         f"{unknown[0]!r}): export with the queries file the store was generated for")
    if include_query_text:
        write_jsonl(out / "queries.jsonl", ({"_id": q, "text": queries[q].text} for q in used if q in queries))
    with atomic_write(out / "queries.ref.json") as handle:
        ref = {"source": queries_source, "ids": used, "note": "query text is not copied; read it from source"}
        if queries_split:  # a BEIR folder's queries_<split>.jsonl: readers must use the same split
            ref["split"] = queries_split
        json.dump(ref, handle, indent=1)
    export_cols = [c for c in ITEM_COLUMNS if c != "gen_key"] + ["filter"]
    write_jsonl(out / "generations.jsonl", ({c: r[c] for c in export_cols} for r in items))
    with atomic_write(out / "generation.json") as handle:
        json.dump({k: gen[k] for k in ("gen_key", "model", "prompt_name", "prompt_kind", "prompt_hash", "sampling", "created")},
                  handle, indent=1)
    card = {"name": out.name, "generation": {k: gen[k] for k in ("gen_key", "model", "prompt_name", "prompt_kind", "prompt_hash", "sampling")},
            "queries_source": queries_source, "counts": summarize(items)}
    diag = out / "diagnose.json"
    if diag.is_file():
        card["fidelity"] = json.loads(diag.read_text())
    with atomic_write(out / "card.json") as handle:
        json.dump(card, handle, indent=1)
    with atomic_write(out / "README.md") as handle:
        handle.write(render_card(card))
    if hf:
        _write_hf(out / "hf", gen_key, kept, queries if include_query_text else {})
    return card


def _write_hf(folder: Path, gen_key: str, kept: list[dict], queries: dict[str, Query]) -> None:
    from datasets import Dataset

    rows = [{"query_id": r["query_id"], "query": queries[r["query_id"]].text if r["query_id"] in queries else None,
             "passage_id": passage_id(gen_key, r["query_id"], r["level"], r["idx"]), "level": r["level"],
             "passage": r["passage"]} for r in kept]
    Dataset.from_list(rows).save_to_disk(str(folder))


def card_fields(card: dict) -> dict:
    """The Hub's YAML header of a dataset card: license, tags, task, size, source queries, generator."""
    g, c = card["generation"], card["counts"]
    size = next(label for limit, label in ((1e3, "n<1K"), (1e4, "1K<n<10K"), (1e5, "10K<n<100K"), (1e6, "100K<n<1M"),
                                          (float("inf"), "n>1M")) if c["kept"] < limit)
    fidelity = {j: {"kendall_tau": v.get("kendall_tau_mean"), "pair_accuracy": v.get("pair_accuracy")}
                for j, v in (card.get("fidelity") or {}).get("judges", {}).items() if isinstance(v, dict)}
    return {"license": "other", "license_name": "same terms as the source queries and the generator's outputs",
            "task_categories": ["text-retrieval"], "tags": ["synthrank", "synthetic", "graded-relevance", "sycl"],
            "size_categories": [size], "pretty_name": f"synthrank synthetic passages: {card['name']}",
            "source_datasets": [card["queries_source"]], "generator": g["model"], "prompt": g["prompt_name"],
            "sampling": g["sampling"], "fidelity": fidelity}


def render_card(card: dict) -> str:
    """The dataset card as Markdown, with the Hub's YAML header."""
    from synthrank.hub import card_header

    g, c = card["generation"], card["counts"]
    lines = [card_header(card_fields(card)).rstrip("\n"), "", f"# Synthetic graded passages: {card['name']}", "",
             "Passages written by an LLM at graded relevance levels (TREC DL scale) for real queries, "
             "generated with `synthrank generate`. Query text is not included: ids refer to "
             f"`{card['queries_source']}`" + ("" if Path(card["queries_source"]).is_absolute() else
                                              " (a relative path: next to this folder, in the current folder, or under "
                                              "the data root, `--data-root` / `$SYNTHRANK_DATA`)") + ".", "",
             "| field | value |", "|---|---|",
             f"| model | `{g['model']}` |", f"| prompt | `{g['prompt_name']}` ({g['prompt_kind']}), hash `{g['prompt_hash']}` |",
             f"| sampling | `{json.dumps(g['sampling'], sort_keys=True)}` |", f"| generation key | `{g['gen_key']}` |",
             f"| queries | {c['queries']} |", f"| rows | {c['rows']} (done {c['done']}, failed {c['failed']}) |",
             f"| kept passages | {c['kept']} |", f"| completion tokens | {c['completion_tokens']} |", "",
             "## Per level", "", "| level | name | rows | done | kept |", "|---|---|---|---|---|"]
    for level, v in c["per_level"].items():
        lines.append(f"| {level} | {LEVEL_NAMES.get(int(level), '(from the levels file)')} | {v['rows']} | {v['done']} | {v['kept']} |")
    lines += ["", "## Filters (done passages)", "", "| reason | count |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in c["filters"].items()]
    if c["failure_reasons"]:
        lines += ["", "Failed rows by reason: " + ", ".join(f"{k}: {v}" for k, v in c["failure_reasons"].items())]
    fid = card.get("fidelity")
    lines += ["", "## Level fidelity", ""]
    if fid:
        from synthrank.generate.diagnose import render_diagnose_table

        lines.append(render_diagnose_table(fid))
    else:
        lines.append("Not measured yet: run `synthrank generate diagnose` on this folder.")
    return "\n".join(lines) + "\n"


def read_export(folder: Path) -> tuple[dict, list[dict]]:
    """Read ``generation.json`` and ``generations.jsonl`` of an export (to seed a store).

    DataFormatError (file, line) when either is missing or not what an export writes."""
    from synthrank.data.errors import DataFormatError
    from synthrank.data.jsonl import check_readable_file, iter_text_lines

    folder = Path(folder)
    gen_path = folder / "generation.json"
    check_readable_file(gen_path)
    try:
        gen = json.loads(gen_path.read_text(encoding="utf-8"))
    except (ValueError, RecursionError) as err:
        raise DataFormatError(gen_path, 0, "-", f"not valid JSON ({err})") from None
    if not isinstance(gen, dict) or not all(k in gen for k in ("gen_key", "model", "prompt_hash", "sampling")):
        raise DataFormatError(gen_path, 0, "-", "not the generation.json of a synthrank export")
    rows = []
    path = folder / "generations.jsonl"
    for number, line in iter_text_lines(path):
        try:
            row = json.loads(line)
        except (ValueError, RecursionError):
            raise DataFormatError(path, number, "-", "malformed JSON") from None
        if not isinstance(row, dict) or not all(k in row for k in ("query_id", "level", "idx", "status")):
            raise DataFormatError(path, number, "-", "not a row of a synthrank export (query_id, level, idx, status)")
        row.pop("filter", None)
        rows.append(row)
    return gen, rows
