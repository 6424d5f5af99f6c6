"""`synthrank train` end to end on a tiny set with a tiny static model; resume after SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from synthrank.cli import app
from synthrank.data import DataFormatError
from synthrank.config_io import apply_overrides
from synthrank.train.config import load_train_config
from training_fixtures import write_tiny_static_model, write_tiny_synthetic_set


@pytest.fixture(scope="module")
def tiny_inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    write_tiny_synthetic_set(root / "synthetic")
    write_tiny_static_model(root / "base")
    return root


def _config(root: Path, out: Path, **training) -> Path:
    cfg = {
        "base_model": str(root / "base"), "output_dir": str(out),
        "sources": [{"name": "synthetic", "data": str(root / "synthetic")}],
        "context": {"group_size": 4}, "loss": {"name": "ws2", "temperature": 1.0},
        "training": {"batch_size": 4, "epochs": 3, "learning_rate": 0.01, "save_steps": 2, "logging_steps": 1, **training},
    }
    path = out.parent / f"{out.name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _graded_ndcg(model_dir: Path, root: Path) -> float:
    """Mean nDCG@4 of each training query's own 4 passages, ranked by the model."""
    import math

    from sentence_transformers import SentenceTransformer

    from synthrank.data import load_beir_folder

    data = load_beir_folder(root / "synthetic", split="train")
    model = SentenceTransformer(str(model_dir), device="cpu")
    total = 0.0
    for qid, judged in data.qrels.items():
        ids = list(judged)
        q = model.encode([data.queries[qid].text])
        d = model.encode([data.corpus[i].text for i in ids])
        order = sorted(range(len(ids)), key=lambda j: -float(q[0] @ d[j]))
        dcg = sum(judged[ids[j]] / math.log2(r + 2) for r, j in enumerate(order))
        ideal = sum(g / math.log2(r + 2) for r, g in enumerate(sorted(judged.values(), reverse=True)))
        total += dcg / ideal
    return total / len(data.qrels)


def test_train_writes_a_loadable_model_with_card_and_curve(tiny_inputs: Path, tmp_path: Path) -> None:
    config = _config(tiny_inputs, tmp_path / "run")
    result = CliRunner().invoke(app, ["train", str(config), "-q", "--no-resume"])
    assert result.exit_code == 0, result.output
    out = tmp_path / "run"
    assert "trained 12 steps" in result.output  # 16 queries / batch 4 x 3 epochs
    card = (out / "model" / "README.md").read_text()
    assert "## Trained with synthrank" in card and "`ws2`" in card and "group size G = 4" in card
    assert (out / "loss_curve.png").stat().st_size > 1000
    history = json.loads((out / "log_history.json").read_text())
    losses = [row["loss"] for row in history if "loss" in row]
    assert [row["step"] for row in history if "loss" in row] == list(range(1, 13))
    assert sum(losses[-4:]) < sum(losses[:4])  # the last epoch's ws2 is lower than the first's
    # The model is a loadable sentence-transformers folder that still ranks its training data well
    # (this lexical toy set is already near the ceiling for the random static base, nDCG ~0.99).
    assert _graded_ndcg(out / "model", tiny_inputs) > 0.9


def test_logged_epoch_counts_passes_over_the_contexts(tiny_inputs: Path, tmp_path: Path) -> None:
    """The epochs are laid out in one dataset that the trainer reads once; the logged ``epoch`` still counts
    passes over the ranking contexts (it used to end at ~1.0 for a 3-epoch run), with or without accumulation."""
    for name, accumulation, per_epoch in (("plain", 1, 4), ("accumulated", 2, 2)):  # 16 queries / batch 4
        out = tmp_path / name
        config = _config(tiny_inputs, out, gradient_accumulation_steps=accumulation)
        result = CliRunner().invoke(app, ["train", str(config), "-q", "--no-resume"])
        assert result.exit_code == 0, result.output
        logged = {row["step"]: row["epoch"] for row in json.loads((out / "log_history.json").read_text()) if "loss" in row}
        assert logged == {step: pytest.approx(step / per_epoch) for step in range(1, 3 * per_epoch + 1)}


def test_bf16_trains_on_cpu_and_saves_fp32_weights(tiny_inputs: Path, tmp_path: Path) -> None:
    """``training.bf16`` on a machine without CUDA runs the trainer on CPU under bf16 autocast."""
    import torch
    from safetensors import safe_open

    config = _config(tiny_inputs, tmp_path / "bf16", bf16=True, epochs=1)
    result = CliRunner().invoke(app, ["train", str(config), "-q", "--no-resume"])
    assert result.exit_code == 0, result.output
    assert "trained 4 steps" in result.output
    weights = next((tmp_path / "bf16" / "model").rglob("*.safetensors"))
    with safe_open(str(weights), "pt") as handle:
        assert {handle.get_tensor(k).dtype for k in handle.keys()} == {torch.float32}


def test_resume_after_sigkill_replays_nothing(tiny_inputs: Path, tmp_path: Path) -> None:
    out = tmp_path / "killed"
    config = _config(tiny_inputs, out, epochs=6)  # 24 steps, a checkpoint every 2
    command = [sys.executable, "-m", "synthrank.cli", "train", str(config), "-q"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    # Any checkpoint from step 6 on: save_total_limit rotates old ones away, so a poller that a
    # loaded machine wakes late can miss checkpoint-6 itself.
    reached = lambda: any(int(p.name.split("-")[1]) >= 6 for p in (out / "checkpoints").glob("checkpoint-*"))
    while time.time() < deadline and proc.poll() is None and not reached():
        time.sleep(0.05)
    assert proc.poll() is None, "training ended before it could be killed:\n" + proc.stdout.read().decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "model").exists()
    finished = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "resumed from" in finished.stdout and "trained 24 steps" in finished.stdout
    history = json.loads((out / "log_history.json").read_text())
    steps = [row["step"] for row in history if "loss" in row]
    assert steps == list(range(1, 25)), steps  # every step once: nothing lost, nothing repeated


def test_overrides_and_config_errors(tmp_path: Path) -> None:
    raw = apply_overrides({"loss": {"name": "ws2"}, "sources": [{"name": "a", "data": "x"}]},
                          ["loss.name=kl", "training.batch_size=8", "sources.0.data=y", "context.group_size=4"])
    assert raw["loss"]["name"] == "kl" and raw["training"]["batch_size"] == 8 and raw["sources"][0]["data"] == "y"
    assert apply_overrides({"dev": None}, ["dev.data=x"]) == {"dev": {"data": "x"}}
    with pytest.raises(ValueError, match="cannot apply override 'sources.5.data=y'"):
        apply_overrides({"sources": []}, ["sources.5.data=y"])
    cfg_path = tmp_path / "ok.yaml"
    cfg_path.write_text(yaml.safe_dump({"output_dir": "x", "sources": [], "context": {"group_size": 4}, "dev": {"data": "d", "metric": "ndcg10"}}))
    with pytest.raises(DataFormatError, match="dev.metric"):
        load_train_config(cfg_path)
    cfg_path.write_text(yaml.safe_dump({"output_dir": "x", "sources": [], "context": {"group_size": 4}}))
    config, _ = load_train_config(cfg_path, literal={"output_dir": "runs/exp #2", "loss.name": "kl"})
    assert str(config.output_dir) == "runs/exp #2" and config.loss.name == "kl"
    bad = tmp_path / "bad.yaml"
    bad.write_text("output_dir: x\nsources: [\n")
    with pytest.raises(DataFormatError, match="bad.yaml:.*invalid YAML"):
        load_train_config(bad)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text(yaml.safe_dump({"output_dir": "x", "sources": [], "context": {"group_size": 4}, "training": {"lr": 1}}))
    # the line of the offending key in the YAML file (it was always 0)
    with pytest.raises(DataFormatError, match=r"unknown.yaml:6: training.lr: Extra inputs are not permitted"):
        load_train_config(unknown)
    result = CliRunner().invoke(app, ["train", str(unknown)])
    assert result.exit_code == 2


def test_incomplete_checkpoint_is_skipped_and_removed(tmp_path: Path) -> None:
    from synthrank.train.trainer import last_complete_checkpoint

    for step, state in ((2, '{"global_step": 2}'), (4, '{"global_st'), (6, None)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if state is not None:
            (folder / "trainer_state.json").write_text(state)
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-2")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]


def test_dev_set_is_evaluated_during_and_after_training(tiny_inputs: Path, tmp_path: Path) -> None:
    config = _config(tiny_inputs, tmp_path / "dev", epochs=2, eval_steps=4)
    raw = yaml.safe_load(config.read_text())
    raw["dev"] = {"data": str(tiny_inputs / "synthetic"), "split": "train", "max_queries": 8}
    config.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["train", str(config), "-q", "--no-resume"])
    assert result.exit_code == 0, result.output
    assert "dev: dev_ndcg@10 = " in result.output
    history = json.loads((tmp_path / "dev" / "log_history.json").read_text())
    evaluated = [row["step"] for row in history if "eval_dev_ndcg@10" in row]
    assert evaluated == [4, 8]
    assert all(0.0 <= row["eval_dev_ndcg@10"] <= 1.0 for row in history if "eval_dev_ndcg@10" in row)


def test_trained_similarity_is_saved_and_used_by_evaluate_and_mine(tiny_inputs: Path, tmp_path: Path) -> None:
    """A model trained with `similarity: dot` is searched with dot products later, unless overridden."""
    from sentence_transformers import SentenceTransformer

    from synthrank.evaluate.pipeline import evaluate
    from synthrank.mine import mine_hard_negatives
    from synthrank.data import load_beir_folder

    config = _config(tiny_inputs, tmp_path / "dot", epochs=1)
    raw = yaml.safe_load(config.read_text())
    raw["loss"]["similarity"] = "dot"
    config.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["train", str(config), "-q", "--no-resume"])
    assert result.exit_code == 0, result.output
    model_dir = tmp_path / "dot" / "model"
    assert SentenceTransformer(str(model_dir), device="cpu").similarity_fn_name == "dot"
    assert "similarity `dot`" in (model_dir / "README.md").read_text()
    data = load_beir_folder(tiny_inputs / "synthetic", split="train")
    common = dict(model=str(model_dir), dataset=data, split="train", use_cache=False, progress=False, top_k=64)
    assert evaluate(**common).settings["similarity"] == "dot"
    assert evaluate(**common, similarity="cosine").settings["similarity"] == "cosine"
    dot = mine_hard_negatives(data.queries, data.corpus, method="dense", model=str(model_dir), rank_range=(1, 8), count=8, sample="top")
    cos = mine_hard_negatives(data.queries, data.corpus, method="dense", model=str(model_dir), rank_range=(1, 8), count=8, sample="top",
                              similarity="cosine")
    assert dot.qrels.keys() == cos.qrels.keys()  # both ran; the rankings may differ


def test_a_changed_config_never_resumes_the_old_run(tiny_inputs: Path, tmp_path: Path) -> None:
    config = _config(tiny_inputs, tmp_path / "run", epochs=1)
    assert CliRunner().invoke(app, ["train", str(config), "-q"]).exit_code == 0
    weights = next((tmp_path / "run" / "model").rglob("*.safetensors")).read_bytes()
    changed = CliRunner().invoke(app, ["train", str(config), "-q", "--loss.name", "kl", "--set", "training.learning_rate=0.5"])
    assert changed.exit_code == 2, changed.output
    message = " ".join(changed.output.split())
    assert "another configuration" in message and "loss.name" in message and "training.learning_rate" in message
    assert next((tmp_path / "run" / "model").rglob("*.safetensors")).read_bytes() == weights  # nothing rewritten
    assert "`ws2`" in (tmp_path / "run" / "model" / "README.md").read_text()
    # Bookkeeping fields are not a new configuration: the same run resumes (0 steps left).
    same = CliRunner().invoke(app, ["train", str(config), "-q", "--set", "training.logging_steps=3"])
    assert same.exit_code == 0 and "resumed from" in same.output, same.output
    # --no-resume starts over with the new configuration.
    fresh = CliRunner().invoke(app, ["train", str(config), "-q", "--loss.name", "kl", "--no-resume"])
    assert fresh.exit_code == 0 and "resumed" not in fresh.output and "trained 4 steps" in fresh.output, fresh.output
    assert "`kl`" in (tmp_path / "run" / "model" / "README.md").read_text()


def test_bf16_without_native_support_warns_and_trains_in_fp32(tiny_inputs: Path, tmp_path: Path, monkeypatch) -> None:
    from synthrank.evaluate import encode
    from synthrank.train import trainer

    assert encode.cpu_has_native_bf16("flags\t: fpu sse avx2 avx512f\n") is False
    assert encode.cpu_has_native_bf16("flags\t: fpu avx512f avx512_bf16\n") is True
    assert encode.cpu_has_native_bf16("Features\t: fp asimd bf16\n") is True
    monkeypatch.setattr(encode, "cpu_has_native_bf16", lambda cpuinfo=None: False)
    monkeypatch.setattr(trainer.torch.cuda, "is_available", lambda: False)
    config = _config(tiny_inputs, tmp_path / "nobf16", bf16=True, epochs=1)
    result = CliRunner().invoke(app, ["train", str(config), "-q", "--no-resume"])
    assert result.exit_code == 0, result.output
    assert "no native bfloat16" in result.output
    assert json.loads((tmp_path / "nobf16" / "train_info.json").read_text())["precision"] == "fp32"
    assert "precision fp32" in (tmp_path / "nobf16" / "model" / "README.md").read_text()


def test_tensorboard_gradient_accumulation_scheduler_and_prompts(tiny_inputs: Path, tmp_path: Path) -> None:
    """Issue 21's training controls: event files in output_dir/logs, 2 batches per optimizer step, a cosine
    schedule, and E5-style prompts used in training and saved so that evaluation encodes with them."""
    pytest.importorskip("tensorboard")
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "controls"
    config = _config(tiny_inputs, out, report_to=["tensorboard"], gradient_accumulation_steps=2, lr_scheduler="cosine", epochs=2)
    raw = yaml.safe_load(config.read_text())
    raw["prompts"] = {"query": "query: ", "document": "passage: "}
    config.write_text(yaml.safe_dump(raw))
    result = CliRunner().invoke(app, ["train", str(config), "-q"])
    assert result.exit_code == 0, result.output
    events = list((out / "logs").rglob("events.out.tfevents.*"))
    assert events, list(out.rglob("*"))
    history = json.loads((out / "log_history.json").read_text())
    rows = 16 * 2  # 16 queries x 2 epochs of the tiny set
    steps = max(h.get("step", 0) for h in history)
    assert steps == rows // (4 * 2)  # batch 4, 2 batches per optimizer step
    model = SentenceTransformer(str(out / "model"), device="cpu")
    assert model.prompts.get("query") == "query: " and model.prompts.get("document") == "passage: "
    import numpy as np

    assert np.allclose(model.encode_query(["cats"]), model.encode(["query: cats"]), atol=1e-6)
