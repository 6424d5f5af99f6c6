"""The four stages of ``synthrank run``, each as ``inputs`` (paths whose content defines it) and
``execute`` (do the work in ``<run_dir>/<stage>/``, return ``(outputs, summary)``).

Stages resume by themselves: generation only does missing rows of its SQLite store, training
restarts from its newest complete checkpoint, evaluation skips (system, dataset) pairs whose
``results.json`` is already written. :mod:`synthrank.run.pipeline` decides which stages run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from synthrank.data.jsonl import atomic_write
from synthrank.run.config import RunConfig, stage_output, train_config
from synthrank.train.config import resolve_path


def _resolve(path, base_dir: Path) -> Path:
    return resolve_path(Path(path), base_dir)


def _local_model(name: str, base_dir: Path) -> Path | None:
    path = _resolve(name, base_dir)
    return path if path.exists() else None


# --- generate ---------------------------------------------------------------------------------


def generate_inputs(config: RunConfig, base_dir: Path) -> dict[str, Path]:
    job = config.generate
    inputs = {"queries": _resolve(job.queries, base_dir)}
    if job.seed_from is not None:
        inputs["seed_from"] = _resolve(job.seed_from, base_dir)
    return inputs


def generate_execute(config: RunConfig, base_dir: Path, progress: bool) -> tuple[dict, dict]:
    from synthrank.generate.job import run_generate_job

    job = config.generate
    stage_dir = config.folder() / "generate"
    update = {"store": stage_dir / "store.sqlite", "export": stage_output(config, "generate"),
              "queries": _resolve(job.queries, base_dir)}
    if job.seed_from is not None:
        update["seed_from"] = _resolve(job.seed_from, base_dir)
    summary = run_generate_job(job.model_copy(update=update), progress=progress, replace_export=True)
    return {"export": str(update["export"]), "store": str(update["store"])}, summary


# --- mine -------------------------------------------------------------------------------------


def mine_inputs(config: RunConfig, base_dir: Path) -> dict[str, Path]:
    job = config.mine
    inputs = {"queries": _resolve(job.queries, base_dir)}
    if job.corpus is not None:
        inputs["corpus"] = _resolve(job.corpus, base_dir)
    for index, path in enumerate(job.known):
        inputs[f"known_{index}"] = _resolve(path, base_dir)
    return inputs


def mine_execute(config: RunConfig, base_dir: Path, progress: bool) -> tuple[dict, dict]:
    from synthrank.data import write_qrels_tsv
    from synthrank.mine import load_mining_inputs, mine_hard_negatives, parse_rank_range

    job = config.mine
    inputs = mine_inputs(config, base_dir)
    queries, corpus, known = load_mining_inputs(inputs["queries"], job.split, inputs.get("corpus"),
                                                [inputs[k] for k in inputs if k.startswith("known_")])
    queries = job.select(queries)
    cache = None
    if job.method == "dense":
        from synthrank.evaluate.encode import EmbeddingCache

        cache = EmbeddingCache()
    result = mine_hard_negatives(queries, corpus, known, method=job.method, model=job.model, rank_range=parse_rank_range(job.rank_range),
                                 count=job.count, sample=job.sample, seed=job.seed, level=job.level,
                                 positive_threshold=job.positive_level, bm25_fields=job.bm25_fields, cache=cache, progress=progress)
    out = stage_output(config, "mine")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_qrels_tsv(out, result.qrels)
    print(f"mine: {result.stats['pairs']} negatives for {result.stats['queries'] - result.stats['queries_without_negatives']} "
          f"of {result.stats['queries']} queries -> {out}", file=sys.stderr)
    return {"negatives": str(out)}, result.stats


# --- train ------------------------------------------------------------------------------------


def train_inputs(config: RunConfig, base_dir: Path) -> dict[str, Path]:
    tc = train_config(config, base_dir)
    inputs: dict[str, Path] = {}
    for source in tc.sources:
        for key in ("data", "corpus", "queries"):
            value = getattr(source, key)
            if value is not None:
                inputs[f"{source.name}.{key}"] = _resolve(value, base_dir)
    if tc.dev is not None:
        inputs["dev"] = _resolve(tc.dev.data, base_dir)
    local = _local_model(tc.base_model, base_dir)
    if local is not None:
        inputs["base_model"] = local
    return inputs


def train_execute(config: RunConfig, base_dir: Path, progress: bool) -> tuple[dict, dict]:
    from synthrank.train.trainer import train

    tc = train_config(config, base_dir)
    local = _local_model(tc.base_model, base_dir)
    if local is not None:
        tc = tc.model_copy(update={"base_model": str(local)})
    result = train(tc, base_dir=base_dir, resume=True, progress=progress)
    summary = {"steps": result.steps, "resumed_from": result.resumed_from, "train_seconds": round(result.seconds, 1),
               "context_stats": result.context_stats, "final_dev": result.final_dev, "loss": tc.loss.name,
               "base_model": tc.base_model}
    return {"model": str(result.model_dir), "loss_curve": str(stage_output(config, "train") / "loss_curve.png")}, summary


# --- evaluate ---------------------------------------------------------------------------------


def base_model_name(config: RunConfig) -> str:
    if config.evaluate is not None and config.evaluate.base_model:
        return config.evaluate.base_model
    return str((config.train or {}).get("base_model", "all-MiniLM-L6-v2"))


def _dataset_path(data: Path, base_dir: Path) -> Path:
    from synthrank.data.embedded import EMBEDDED_DATASETS, embedded_dataset_path

    if str(data) in ("embedded", *(f"embedded:{name}" for name in EMBEDDED_DATASETS)):
        return embedded_dataset_path(str(data).split(":", 1)[1] if ":" in str(data) else "medline")
    return _resolve(data, base_dir)


def _system_model(system: str, config: RunConfig, base_dir: Path) -> str:
    if system == "trained":
        return str(stage_output(config, "train") / "model")
    if system == "base":
        return str(_local_model(base_model_name(config), base_dir) or base_model_name(config))
    if system == "bm25":
        return "bm25"
    return str(_local_model(system, base_dir) or system)


def system_label(system: str) -> str:
    """A folder-safe, unique name for an evaluated system: ``trained``/``base``/``bm25`` as they are; a
    model path or hub id as its last part plus a short hash (an absolute path joined to the stage
    folder would otherwise *be* that path, and results would land in the model's own folder)."""
    import hashlib
    import re

    if system in ("trained", "base", "bm25"):
        return system
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(system.rstrip("/")).name or system).strip("._") or "model"
    return f"{tail}-{hashlib.sha256(system.encode()).hexdigest()[:8]}"


def evaluate_inputs(config: RunConfig, base_dir: Path) -> dict[str, Path]:
    ev = config.evaluate
    inputs = {f"dataset_{i}": _dataset_path(d.data, base_dir) for i, d in enumerate(ev.datasets)}
    for system in ev.systems:
        model = Path(_system_model(system, config, base_dir))
        if system == "trained" or model.exists():
            inputs[f"system_{system}"] = model
    return inputs


def dataset_labels(config: RunConfig, base_dir: Path) -> list[str]:
    """A folder-safe, unique label per evaluated dataset: its folder name (plus split if needed)."""
    names = [_dataset_path(d.data, base_dir).name for d in config.evaluate.datasets]
    labels = [f"{n}-{d.split}" if names.count(n) > 1 else n for n, d in zip(names, config.evaluate.datasets)]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two evaluate datasets share the label(s) {labels}; give them different folders or splits")
    return labels


def _load_split(spec, path: Path):
    from synthrank.data import load_beir_folder

    dataset = load_beir_folder(path, split=spec.split, allow_unknown_docs=spec.allow_unknown_docs)
    if spec.max_queries is not None or spec.offset:
        keep = list(dataset.queries)[spec.offset:][: spec.max_queries]
        dataset.queries = {q: dataset.queries[q] for q in keep}
        dataset.qrels = {q: dataset.qrels[q] for q in keep if q in dataset.qrels}
    return dataset


def shared_max_seq_length(config: RunConfig, base_dir: Path) -> int | None:
    """The one truncation length every dense system of the run is encoded with: ``evaluate.max_seq_length``,
    else the base model's own (a trained model keeps its *training* length, often shorter, which
    would make trained vs base a comparison of two settings). None when no system has a length."""
    from synthrank.evaluate.encoders import load_encoder

    ev = config.evaluate
    if ev.max_seq_length is not None:
        return ev.max_seq_length
    base = _system_model("base", config, base_dir)
    try:
        length = getattr(load_encoder(base), "max_seq_length", None)
    except (OSError, ValueError) as err:
        raise ValueError(f"evaluate: cannot read the base model {base!r} to fix a shared max_seq_length ({err}); "
                         "set evaluate.max_seq_length") from None
    return None if length in (None, float("inf")) else int(length)


def evaluate_execute(config: RunConfig, base_dir: Path, progress: bool) -> tuple[dict, dict]:
    """Every system on every dataset (skipping pairs already written), then the comparisons.

    Every dense system is encoded with the same settings (max_seq_length from
    :func:`shared_max_seq_length`, precision, batch size, top-k); each keeps its own similarity
    function (the one it was trained with). The settings are recorded in each results.json and
    stated in the report."""
    from synthrank.evaluate.encoders import load_encoder, set_max_seq_length
    from synthrank.evaluate.pipeline import evaluate, write_evaluation_outputs

    ev = config.evaluate
    stage_dir = config.folder() / "evaluate"
    labels = dataset_labels(config, base_dir)
    result_files: list[str] = []
    encoders: dict[str, object] = {}
    max_seq_length = shared_max_seq_length(config, base_dir) if any(
        _system_model(s, config, base_dir) != "bm25" for s in ev.systems) else None
    for spec, label in zip(ev.datasets, labels):
        path = _dataset_path(spec.data, base_dir)
        dataset = None
        for system in ev.systems:
            out = stage_dir / label / system_label(system)
            if (out / "results.json").is_file():
                result_files.append(str(out / "results.json"))
                continue
            dataset = dataset or _load_split(spec, path)
            model = _system_model(system, config, base_dir)
            if system == "trained" and not (Path(model) / "modules.json").is_file():
                raise ValueError(f"no trained model at {model}: run the train stage first (or drop 'trained' from evaluate.systems)")
            encoder = None
            if model != "bm25":
                encoder = encoders.get(model) or load_encoder(model)
                if max_seq_length is not None:
                    set_max_seq_length(encoder, max_seq_length)
                encoders[model] = encoder
            print(f"evaluate: {system} on {label} ({len(dataset.queries)} queries)", file=sys.stderr)
            result = evaluate(model, dataset=dataset, split=spec.split, metrics=ev.metrics, relevance_level=spec.relevance_level,
                              top_k_docs=ev.top_k, batch_size=ev.batch_size, progress=progress, encoder=encoder,
                              precision=ev.precision)
            result.model = system_label(system)
            result.settings["model"] = model
            write_evaluation_outputs(result, out)
            result_files.append(str(out / "results.json"))
    summary = compare_systems(result_files, ev.metric, stage_dir)
    return {"results": result_files, "comparisons": str(stage_dir / "comparisons.json")}, summary


def encoding_settings(result_files: list[str]) -> dict:
    """``{system: {max_seq_length, precision, similarity, top_k}}`` as recorded in the results files."""
    out: dict[str, dict] = {}
    for path in result_files:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        s = result.get("settings", {})
        if result["model"] == "bm25":
            out["bm25"] = {"top_k": s.get("top_k"), "fields": (s.get("bm25") or {}).get("fields")}
        else:
            out[result["model"]] = {k: s.get(k) for k in ("max_seq_length", "precision", "similarity", "top_k")}
    return out


def compare_systems(result_files: list[str], metric: str, out_dir: Path) -> dict:
    """Tables against ``base`` and ``bm25`` (when present), a bar chart and per-query plots."""
    from synthrank.evaluate.compare import compare_results
    from synthrank.evaluate.plots import plot_metric_bars, plot_per_query_differences
    from synthrank.evaluate.results_files import load_results

    results = load_results(result_files)
    systems = {r["model"] for r in results}
    tables = {}
    for baseline in ("base", "bm25"):
        if baseline in systems and len(systems) > 1:
            table = compare_results(results, metric=metric, baseline=baseline)
            tables[baseline] = table
            try:
                plot_per_query_differences(table, None, None, out_dir / f"per_query_vs_{baseline}.png")
            except ValueError:
                pass
    plot_metric_bars(results, metric, out_dir / "metrics.png")
    summary = {"metric": metric, "tables": {b: t.to_dict() for b, t in tables.items()},
               "markdown": {b: t.render_markdown() for b, t in tables.items()},
               "values": {f"{r['model']}|{r['dataset']}|{r['split']}": r["metrics"] for r in results},
               "settings": encoding_settings(result_files)}
    with atomic_write(out_dir / "comparisons.json") as handle:
        json.dump(summary, handle, indent=1)
    return summary
