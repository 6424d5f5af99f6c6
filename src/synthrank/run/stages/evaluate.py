"""The evaluate stage: every system of the section on every dataset, then the comparisons.

Systems are the roles of :mod:`synthrank.systems` (``trained``, ``base``, ``bm25``) or any model
folder / hub id. Every dense system is retrieved with the section's one set of
:class:`~synthrank.evaluate.options.RetrievalOptions` and one max length
(:func:`shared_max_seq_length`); each keeps its own similarity (the one it was trained with).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from synthrank.data.jsonl import atomic_write
from synthrank.evaluate.options import EvaluateConfig, EvaluateOptions, RetrievalOptions
from synthrank.run.stages.base import Stage, local_model, resolve
from synthrank.systems import BASE, BM25, COMPARED_AGAINST, TRAINED, system_label


def base_model_name(config) -> str:
    if config.evaluate is not None and config.evaluate.base_model:
        return config.evaluate.base_model
    return config.train.base_model if config.train is not None else "all-MiniLM-L6-v2"


def dataset_path(data: Path, base_dir: Path) -> Path:
    """An evaluate dataset's folder (a path, or a name such as ``embedded``, ``beir:scifact``: see data/named.py)."""
    return resolve(data, base_dir)


def system_model(system: str, config, base_dir: Path) -> str:
    """The model a system names: the run's trained model, the base model, ``bm25``, or a path / hub id."""
    if system == TRAINED:
        from synthrank.run.stages.train import TrainStage

        return str(TrainStage().output(config.folder()) / "model")
    if system == BASE:
        return str(local_model(base_model_name(config), base_dir) or base_model_name(config))
    if system == BM25:
        return BM25
    return str(local_model(system, base_dir) or system)


def dataset_labels(config, base_dir: Path) -> list[str]:
    """A folder-safe, unique label per evaluated dataset: its folder name (plus split if needed)."""
    names = [dataset_path(d.data, base_dir).name for d in config.evaluate.all_datasets()]
    labels = [f"{n}-{d.split}" if names.count(n) > 1 else n for n, d in zip(names, config.evaluate.all_datasets())]
    if len(set(labels)) != len(labels):
        raise ValueError(f"two evaluate datasets share the label(s) {labels}; give them different folders or splits")
    return labels


def shared_max_seq_length(config, base_dir: Path) -> int | None:
    """The one truncation length every dense system of the run is encoded with: ``evaluate.max_seq_length``,
    else the base model's own (a trained model keeps its *training* length, often shorter, which
    would make trained vs base a comparison of two settings). None when no system has a length."""
    from synthrank.evaluate.encoders import load_encoder

    ev = config.evaluate
    if ev.max_seq_length is not None:
        return ev.max_seq_length
    base = system_model(BASE, config, base_dir)
    try:
        length = getattr(load_encoder(base), "max_seq_length", None)
    except (OSError, ValueError) as err:
        raise ValueError(f"evaluate: cannot read the base model {base!r} to fix a shared max_seq_length ({err}); "
                         "set evaluate.max_seq_length") from None
    return None if length in (None, float("inf")) else int(length)


class EvaluateStage(Stage):
    name = "evaluate"
    section = EvaluateConfig
    later_fields = {"suites": [], "nlist": None, "nprobe": None, "processes": 1, "embedding_dtype": "float32", "precision": "fp32", "datasets.*.offset": 0, "datasets.*.drop_own_id": False, "index": "exact",
                    "similarity": None, "bm25_fields": "multifield", "cache_dir": None, "use_cache": True}

    def inputs(self, config, base_dir: Path) -> dict[str, Path]:
        ev = config.evaluate
        inputs = {f"dataset_{i}": dataset_path(d.data, base_dir) for i, d in enumerate(ev.all_datasets())}
        for system in ev.systems:
            model = Path(system_model(system, config, base_dir))
            if system == TRAINED or model.exists():
                inputs[f"system_{system}"] = model
        return inputs

    def execute(self, config, base_dir: Path, progress: bool) -> tuple[dict, dict]:
        """Every system on every dataset (skipping pairs already written), then the comparisons; the
        settings are recorded in each results.json and stated in the report."""
        from synthrank.evaluate.encoders import load_encoder, set_max_seq_length
        from synthrank.evaluate.pipeline import evaluate, write_evaluation_outputs

        ev = config.evaluate
        stage_dir = config.folder() / self.name
        result_files: list[str] = []
        encoders: dict[str, object] = {}
        dense = any(system_model(s, config, base_dir) != BM25 for s in ev.systems)
        max_seq_length = shared_max_seq_length(config, base_dir) if dense else None
        retrieval = ev.model_dump(include=set(RetrievalOptions.model_fields))
        for spec, label in zip(ev.all_datasets(), dataset_labels(config, base_dir)):
            path = dataset_path(spec.data, base_dir)
            dataset = None
            for system in ev.systems:
                out = stage_dir / label / system_label(system)
                if (out / "results.json").is_file():
                    result_files.append(str(out / "results.json"))
                    continue
                dataset = dataset or spec.load(path)
                model = system_model(system, config, base_dir)
                if system == TRAINED and not (Path(model) / "modules.json").is_file():
                    raise ValueError(f"no trained model at {model}: run the train stage first (or drop 'trained' from evaluate.systems)")
                encoder = None
                if model != BM25:
                    encoder = encoders.get(model) or load_encoder(model)
                    if max_seq_length is not None:
                        set_max_seq_length(encoder, max_seq_length)
                    encoders[model] = encoder
                print(f"evaluate: {system} on {label} ({len(dataset.queries)} queries)", file=sys.stderr)
                options = EvaluateOptions.model_validate({**retrieval, **spec.model_dump(), "model": model, "data": path,
                                                          "max_seq_length": None})
                result = evaluate(options=options, dataset=dataset, progress=progress, encoder=encoder)
                result.model = system_label(system)
                result.settings["model"] = model
                write_evaluation_outputs(result, out)
                result_files.append(str(out / "results.json"))
        summary = compare_systems(result_files, ev.metric, stage_dir)
        return {"results": result_files, "comparisons": str(stage_dir / "comparisons.json")}, summary

    def report(self, manifest: dict, run_dir: Path) -> list[str]:
        s = manifest.get("summary") or {}
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
            lines += [f"Against {'the base model' if baseline == BASE else 'BM25'}:", "", text.strip(), ""]
        values = s.get("values") or {}
        if values:
            metrics = list(next(iter(values.values())))
            lines += ["All metrics:", "", "| system | dataset | " + " | ".join(metrics) + " |", "|---|---|" + "---:|" * len(metrics)]
            for key, vals in values.items():
                system, dataset, split = key.split("|")
                lines.append(f"| {system} | {dataset} ({split}) | " + " | ".join(f"{vals[k]:.4f}" for k in metrics) + " |")
            lines.append("")
        for name, caption in (("metrics.png", "metric per dataset"), ("per_query_vs_base.png", "per-query differences vs the base model"),
                              ("per_query_vs_bm25.png", "per-query differences vs BM25")):
            if (run_dir / self.name / name).is_file():
                lines += [f"![{caption}](evaluate/{name})", ""]
        leakage = run_dir / "leakage.json"
        if leakage.is_file():
            counts = json.loads(leakage.read_text(encoding="utf-8"))
            lines += ["Evaluation queries also used as training queries (normalised text, checked before the run): "
                      + ", ".join(f"{k} {v['seen_in_training']} of {v['queries']}" for k, v in counts.items()) + ".", ""]
        return lines


def encoding_settings(result_files: list[str]) -> dict:
    """``{system: {max_seq_length, precision, similarity, top_k}}`` as recorded in the results files."""
    out: dict[str, dict] = {}
    for path in result_files:
        result = json.loads(Path(path).read_text(encoding="utf-8"))
        s = result.get("settings", {})
        if result["model"] == BM25:
            out[BM25] = {"top_k": s.get("top_k"), "fields": (s.get("bm25") or {}).get("fields")}
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
    for baseline in COMPARED_AGAINST:
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
