"""Training queries against evaluation queries: a run must not train on what it is evaluated on.

``synthrank generate --queries <BEIR folder>`` once read ``queries.jsonl``, which for SciFact is
the test claims, so a run could train on its own test queries without a word. Before any stage
runs, :func:`check_run_leakage` collects every training query of the run (the generate job's, the
mine job's, and the queries judged by each other train source) and every evaluated query, and
compares them by normalised text (ids of different files are different namespaces). An overlap
stops the run with a clear message unless ``allow_evaluation_queries_in_training: true``; the
counts are written to ``<run_dir>/leakage.json`` and stated in the report and the quickstart.
"""

from __future__ import annotations

import json
from pathlib import Path

from synthrank.data.jsonl import atomic_write


def normalise_query(text: str) -> str:
    """Lower-case, whitespace collapsed: the key two queries are "the same" by."""
    return " ".join(text.lower().split())


def _generate_queries(config, base_dir: Path) -> list[str]:
    from synthrank.generate.job import load_job_queries
    from synthrank.config_io import resolve_path

    job = config.generate
    chosen, _ = load_job_queries(job.model_copy(update={"queries": resolve_path(Path(job.queries), base_dir)}))
    return [q.text for q in chosen]


def _mine_queries(config, base_dir: Path) -> list[str]:
    from synthrank.mine import load_mining_inputs
    from synthrank.config_io import resolve_path

    job = config.mine
    queries, _, _ = load_mining_inputs(resolve_path(Path(job.queries), base_dir), job.split,
                                       resolve_path(Path(job.corpus), base_dir) if job.corpus else None)
    return [q.text for q in job.select(queries).values()]


def _source_queries(source, base_dir: Path) -> list[str]:
    from synthrank.data.query_refs import load_any_queries
    from synthrank.config_io import resolve_path
    from synthrank.train.sources import _source_paths, read_source_qrels

    # resolved as the trainer resolves them (next to the config when the path exists there, else as given)
    source = source.model_copy(update={k: resolve_path(getattr(source, k), base_dir) for k in ("data", "corpus", "queries")
                                       if getattr(source, k)})
    qrels_path, _, queries_path = _source_paths(source, None)
    if queries_path is None:
        return []
    queries = load_any_queries(queries_path, source.split)
    judged = read_source_qrels(source, qrels_path, None)
    return [queries[qid].text for qid in judged if qid in queries]


def training_queries(config, base_dir: Path) -> set[str]:
    """Normalised texts of every query the run trains on (``@generate`` / ``@mine`` read from their jobs)."""
    from synthrank.run.stages import STAGES
    from synthrank.run.stages.train import stage_outputs, train_config

    texts: list[str] = []
    refs = {str(source.data) for source in config.train.sources}
    if STAGES["generate"].ref in refs and config.generate is not None:
        texts += _generate_queries(config, base_dir)
    if STAGES["mine"].ref in refs and config.mine is not None:
        texts += _mine_queries(config, base_dir)
    own_outputs = set(stage_outputs(config.folder()).values())
    for source in train_config(config, base_dir).sources:
        if Path(source.data) in own_outputs:
            continue  # the run's own stage outputs, counted from their jobs above
        texts += _source_queries(source, base_dir)
    return {normalise_query(t) for t in texts}


def evaluation_queries(config, base_dir: Path) -> dict[str, list[str]]:
    """``{dataset label: [query text, ...]}`` of the judged queries each evaluated split holds."""
    from synthrank.data.beir import load_qrels_tsv, load_queries_jsonl, queries_file_for_split
    from synthrank.run.stages.evaluate import dataset_labels, dataset_path

    out = {}
    for spec, label in zip(config.evaluate.all_datasets(), dataset_labels(config, base_dir)):
        folder = dataset_path(spec.data, base_dir)
        queries = load_queries_jsonl(queries_file_for_split(folder, spec.split))
        judged = load_qrels_tsv(folder / "qrels" / f"{spec.split}.tsv")
        ids = [qid for qid in queries if qid in judged][spec.offset:][: spec.max_queries]
        out[label] = [queries[qid].text for qid in ids]
    return out


def check_run_leakage(config, base_dir: Path, write: bool = True) -> dict:
    """``{label: {"queries": n, "seen_in_training": k, "examples": [...]}}``; raises ValueError on an
    overlap unless the config allows it. Runs without a train and an evaluate section return {}."""
    if config.train is None or config.evaluate is None:
        return {}
    seen = training_queries(config, base_dir)
    report = {}
    for label, texts in evaluation_queries(config, base_dir).items():
        overlap = [t for t in texts if normalise_query(t) in seen]
        report[label] = {"queries": len(texts), "seen_in_training": len(overlap), "examples": overlap[:3]}
    if write:
        config.folder().mkdir(parents=True, exist_ok=True)
        with atomic_write(config.folder() / "leakage.json") as handle:
            json.dump(report, handle, indent=1)
    leaking = {k: v for k, v in report.items() if v["seen_in_training"]}
    if leaking and not config.allow_evaluation_queries_in_training:
        first = next(iter(leaking))
        detail = "; ".join(f"{k}: {v['seen_in_training']} of {v['queries']}" for k, v in leaking.items())
        raise ValueError(f"training queries overlap the evaluation queries ({detail}; e.g. {leaking[first]['examples'][0]!r}): "
                         "train on another split (a BEIR folder's generate/mine split defaults to train), or set "
                         "allow_evaluation_queries_in_training: true to run it anyway")
    return report


def seen_phrase(entry: dict | None) -> str:
    """``"none seen in training"`` / ``"3 seen in training"`` / ``"training overlap not checked"``."""
    if not entry:
        return "training overlap not checked"
    k = entry["seen_in_training"]
    return "none seen in training" if k == 0 else f"{k} seen in training"
