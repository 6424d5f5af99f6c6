"""`synthrank run` end to end with real parts: a loopback OpenAI-compatible server for generation,
BM25 mining, a tiny static model trained for real, evaluation with pytrec_eval; then skipping,
change detection, and SIGKILL + resume of the train stage."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "generate"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))

from generate_fake_server import FakeOpenAI, write_test_prompt
from training_fixtures import (  # noqa: F401
    one_intra_op_thread,
    write_tiny_bert_model,
    write_tiny_static_model,
    write_tiny_synthetic_set,
)

from synthrank.cli import app
from synthrank.data import DataFormatError
from synthrank.run import load_run_config, run_pipeline


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("run-inputs")
    beir = write_tiny_synthetic_set(root / "beir")  # 16 queries x 4 graded passages; used as the test collection
    shutil.copy(beir / "qrels" / "train.tsv", beir / "qrels" / "test.tsv")
    write_tiny_static_model(root / "base")
    write_test_prompt(root)
    return root


def _config(root: Path, run_dir: Path, base_url: str, **training) -> dict:
    return {
        "name": "tiny",
        "run_dir": str(run_dir),
        # The toy collection is both the generation queries and the test set: mechanics only.
        "allow_evaluation_queries_in_training": True,
        "generate": {"queries": str(root / "beir"), "split": "test", "backend": "openai", "model": "fake", "base_url": [base_url],
                     "prompt": str(root / "test-per-level.txt"), "concurrency": 4, "diagnose": ["bm25"]},
        "mine": {"queries": str(root / "beir"), "split": "test", "rank_range": "1:8", "count": 2, "seed": 1},
        "train": {"base_model": str(root / "base"),
                  "sources": [{"name": "synthetic", "data": "@generate"},
                              {"name": "bm25", "data": "@mine", "corpus": str(root / "beir")}],
                  # cosine, as the base is evaluated: the model is now evaluated with the similarity it was
                  # trained with (before session 9 a dot-trained model was silently evaluated as cosine)
                  "context": {"group_size": 4}, "loss": {"name": "ws2", "temperature": 1.0, "similarity": "cosine"},
                  "training": {"batch_size": 4, "epochs": 2, "learning_rate": 0.01, "save_steps": 2, **training}},
        "evaluate": {"datasets": [{"data": str(root / "beir"), "split": "test"}], "metrics": ["ndcg@10", "recall@10"]},
    }


def _write(config: dict, path: Path) -> Path:
    path.write_text(yaml.safe_dump(config))
    return path


def _actions(outcome) -> dict[str, str]:
    return {s.stage: s.action for s in outcome.stages}


def test_run_all_stages_then_skip_then_rerun_what_changed(inputs: Path, tmp_path: Path) -> None:
    with FakeOpenAI(fault_rate=0.2, seed=3) as server:
        path = _write(_config(inputs, tmp_path / "run", server.base_url), tmp_path / "run.yaml")
        config, base_dir = load_run_config(path)
        first = run_pipeline(config, base_dir, progress=False)
        assert _actions(first) == {"generate": "ran", "mine": "ran", "train": "ran", "evaluate": "ran"}
        calls_after_first = server.calls

        run = tmp_path / "run"
        for stage in ("generate", "mine", "train", "evaluate"):
            manifest = json.loads((run / stage / "manifest.json").read_text())
            assert manifest["status"] == "done" and len(manifest["fingerprint"]) == 64
            assert manifest["versions"]["torch"] and manifest["inputs"] and manifest["seconds"] >= 0
        assert (run / "generate" / "export" / "qrels" / "train.tsv").is_file()
        mined = json.loads((run / "mine" / "manifest.json").read_text())["summary"]["pairs"]
        assert 0 < mined == len((run / "mine" / "negatives.qrels.tsv").read_text().splitlines()) - 1  # header
        assert (run / "train" / "model" / "modules.json").is_file() and (run / "train" / "loss_curve.png").is_file()
        comparisons = json.loads((run / "evaluate" / "comparisons.json").read_text())
        values = comparisons["values"]
        assert set(values) == {f"{s}|beir|test" for s in ("base", "bm25", "trained")}
        assert all(0.0 <= v["ndcg@10"] <= 1.0 for v in values.values())
        # the randomly initialised base ranks the graded passages badly; training on them must help
        assert values["trained|beir|test"]["ndcg@10"] > values["base|beir|test"]["ndcg@10"]
        report = (run / "report.md").read_text()
        for needle in ("## Generate", "Level fidelity", "## Mine", "## Train", "![loss curve](train/loss_curve.png)",
                       "## Evaluate", "Against the base model", "Against BM25", "evaluate/metrics.png", "## Versions"):
            assert needle in report, needle
        assert (run / "evaluate" / "metrics.png").is_file() and (run / "generate" / "export" / "diagnose.png").is_file()

        second = run_pipeline(config, base_dir, progress=False)
        assert _actions(second) == {"generate": "skipped", "mine": "skipped", "train": "skipped", "evaluate": "skipped"}
        assert server.calls == calls_after_first

        changed, _ = load_run_config(path, ["train.training.learning_rate=0.02"])
        third = run_pipeline(changed, base_dir, progress=False)
        assert _actions(third) == {"generate": "skipped", "mine": "skipped", "train": "ran", "evaluate": "ran"}
        stale = [p.name for p in run.iterdir() if p.name.startswith(("train.stale-", "evaluate.stale-"))]
        assert len(stale) == 2  # the old outputs were moved aside, not deleted
        assert json.loads((run / "train" / "manifest.json").read_text())["config"]["training"]["learning_rate"] == 0.02


def test_a_run_training_on_its_evaluation_queries_is_refused_before_any_stage(inputs: Path, tmp_path: Path) -> None:
    config = _config(inputs, tmp_path / "leak", "http://127.0.0.1:9/v1")
    config.pop("allow_evaluation_queries_in_training")
    result = CliRunner().invoke(app, ["run", str(_write(config, tmp_path / "leak.yaml"))])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "training queries overlap the evaluation queries" in message and "beir: 16 of 16" in message
    assert "allow_evaluation_queries_in_training" in message
    assert not (tmp_path / "leak" / "generate").exists()  # nothing ran


def test_generate_reads_a_beir_folders_train_split_unless_told(inputs: Path, tmp_path: Path) -> None:
    """BEIR's queries.jsonl is usually the test queries: without a split, generate takes train, or refuses."""
    from synthrank.generate.job import GenerateJob, load_job_queries

    folder = tmp_path / "beir"
    shutil.copytree(inputs / "beir", folder)
    (folder / "qrels" / "train.tsv").unlink()
    with pytest.raises(DataFormatError, match="no queries_train.jsonl and no qrels/train.tsv"):
        load_job_queries(GenerateJob(queries=folder))
    assert len(load_job_queries(GenerateJob(queries=folder, split="test"))[0]) == 16  # asked for explicitly
    (folder / "queries_train.jsonl").write_text('{"_id": "t1", "text": "a training question"}\n')
    chosen, _ = load_job_queries(GenerateJob(queries=folder))
    assert [q.id for q in chosen] == ["t1"]
    # qrels/train.tsv judging some queries of a shared queries.jsonl: only those.
    (folder / "queries_train.jsonl").unlink()
    (folder / "qrels" / "train.tsv").write_text("query-id\tcorpus-id\tscore\nq3\ts3-L3\t3\n")
    assert [q.id for q in load_job_queries(GenerateJob(queries=folder))[0]] == ["q3"]


def test_trained_and_base_are_encoded_with_the_same_settings(inputs: Path, tmp_path: Path) -> None:
    """A training step at learning rate 0 leaves the weights as they were: trained must then equal base
    exactly, even though training truncated at 8 tokens (once it was evaluated at 8, the base at 128)."""
    base = write_tiny_bert_model(tmp_path / "bert", max_seq_length=128)
    config = {
        "name": "lr0", "run_dir": str(tmp_path / "lr0"), "allow_evaluation_queries_in_training": True,
        "train": {"base_model": str(base), "sources": [{"name": "toy", "data": str(inputs / "beir"), "split": "train"}],
                  "context": {"group_size": 4}, "loss": {"name": "ws2", "temperature": 1.0, "similarity": "cosine"},
                  # one step, all of it warmup: learning rate 0
                  "training": {"batch_size": 4, "max_steps": 1, "warmup_ratio": 0.5, "max_seq_length": 8, "save_steps": 5}},
        "evaluate": {"datasets": [{"data": str(inputs / "beir"), "split": "test"}], "systems": ["base", "trained"],
                     "metrics": ["ndcg@10"]},
    }
    loaded, base_dir = load_run_config(_write(config, tmp_path / "lr0.yaml"))
    run_pipeline(loaded, base_dir, progress=False)
    values = json.loads((tmp_path / "lr0" / "evaluate" / "comparisons.json").read_text())
    assert values["values"]["trained|beir|test"] == values["values"]["base|beir|test"]
    assert values["settings"]["trained"]["max_seq_length"] == values["settings"]["base"]["max_seq_length"] == 128
    report = (tmp_path / "lr0" / "report.md").read_text()
    assert "Encoding settings" in report and "| trained | 128 | fp32 | cosine |" in report

    # A system named by its absolute path: results go under the run's evaluate folder, never into the model's.
    before = sorted(p.name for p in base.iterdir())
    config["evaluate"]["systems"] = ["base", str(base)]
    config["run_dir"] = str(tmp_path / "abs")
    loaded, base_dir = load_run_config(_write(config, tmp_path / "abs.yaml"))
    run_pipeline(loaded, base_dir, stages=["evaluate"], progress=False)
    assert sorted(p.name for p in base.iterdir()) == before
    written = list((tmp_path / "abs" / "evaluate" / "beir").iterdir())
    assert len(written) == 2 and all((p / "results.json").is_file() for p in written), written


def test_bad_run_configs_name_the_field(inputs: Path, tmp_path: Path) -> None:
    config = _config(inputs, tmp_path / "run", "http://127.0.0.1:9/v1")
    config["train"]["loss"]["temperature"] = -1
    with pytest.raises(DataFormatError, match=r"train\.loss\.temperature"):
        load_run_config(_write(config, tmp_path / "bad.yaml"))
    config = _config(inputs, tmp_path / "run", "http://127.0.0.1:9/v1")
    config["evaluate"]["metrics"] = ["ndcg@ten"]
    with pytest.raises(DataFormatError, match=r"evaluate\.metrics"):
        load_run_config(_write(config, tmp_path / "bad.yaml"))
    config = _config(inputs, tmp_path / "run", "http://127.0.0.1:9/v1")
    config["train"]["output_dir"] = "elsewhere"
    with pytest.raises(DataFormatError, match=r"train\.output_dir"):
        load_run_config(_write(config, tmp_path / "bad.yaml"))
    good, _ = load_run_config(_write(_config(inputs, tmp_path / "run", "http://127.0.0.1:9/v1"), tmp_path / "good.yaml"))
    with pytest.raises(ValueError, match="unknown stage"):
        good.selected_stages(["generate", "tune"])
    result = CliRunner().invoke(app, ["run", str(tmp_path / "missing.yaml")])
    assert result.exit_code == 2 and "config file not found" in result.output


def test_train_stage_killed_then_resumed(inputs: Path, tmp_path: Path) -> None:
    """SIGKILL `synthrank run --stages train` after its first checkpoint; the rerun resumes from it."""
    run = tmp_path / "run"
    config = _config(inputs, run, "http://127.0.0.1:9/v1", epochs=40, save_steps=3)
    config["train"]["sources"] = [{"name": "synthetic", "data": str(write_tiny_synthetic_set(tmp_path / "set"))}]
    path = _write(config, tmp_path / "run.yaml")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "synthrank.cli", "run", str(path), "--stages", "train", "-q"]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    checkpoints = run / "train" / "checkpoints"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if any((c / "trainer_state.json").is_file() for c in checkpoints.glob("checkpoint-*")):
            break
        time.sleep(0.1)
    assert proc.poll() is None, "training finished (or died) before the first checkpoint: " + proc.stderr.read().decode()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = json.loads((run / "train" / "manifest.json").read_text())
    assert killed["status"] == "running"  # what a kill leaves behind

    final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert final.returncode == 0, final.stderr[-3000:]
    assert "train: resumed" in final.stdout
    manifest = json.loads((run / "train" / "manifest.json").read_text())
    assert manifest["status"] == "done" and manifest["attempts"] == 2 and manifest["fingerprint"] == killed["fingerprint"]
    assert manifest["summary"]["resumed_from"] and "checkpoint-" in manifest["summary"]["resumed_from"]
    assert manifest["summary"]["steps"] == 40 * (16 // 4)
    print(f"\nrun kill/resume: killed after {Path(manifest['summary']['resumed_from']).name}, resumed to step {manifest['summary']['steps']}")


def test_leakage_check_finds_train_sources_given_relative_to_the_current_folder(inputs: Path, tmp_path: Path, monkeypatch) -> None:
    """A source path relative to the current folder (not the config's) is found as the trainer finds it."""
    from synthrank.run.leakage import check_run_leakage

    monkeypatch.chdir(tmp_path)
    shutil.copytree(inputs / "beir", tmp_path / "data" / "beir")
    (tmp_path / "configs").mkdir()
    config = {"name": "rel", "run_dir": str(tmp_path / "rel"),
              "train": {"base_model": str(inputs / "base"), "context": {"group_size": 4},
                        "sources": [{"name": "toy", "data": "data/beir", "queries": "data/beir/queries.jsonl"}]},
              "evaluate": {"datasets": [{"data": str(inputs / "beir"), "split": "test"}]}}
    loaded, base_dir = load_run_config(_write(config, tmp_path / "configs" / "rel.yaml"))
    with pytest.raises(ValueError, match="beir: 16 of 16"):  # found, and it overlaps
        check_run_leakage(loaded, base_dir, write=False)


def test_two_processes_running_the_same_stage_run_it_once(inputs: Path, tmp_path: Path) -> None:
    """Two `synthrank run` processes on one run folder (e.g. two `grid --seeds N` sharing the first seed's
    generate stage) must not both run the stage: the second waits for the first, then skips it.
    Before the per-stage lock both generated every passage into the same store and export."""
    with FakeOpenAI(delay_s=0.4) as server:
        config = _config(inputs, tmp_path / "run", server.base_url)
        path = _write(config, tmp_path / "run.yaml")
        env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
        command = [sys.executable, "-m", "synthrank.cli", "run", str(path), "--stages", "generate", "-q"]
        procs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
        outputs = [proc.communicate(timeout=300) for proc in procs]
        for proc, (out, err) in zip(procs, outputs):
            assert proc.returncode == 0, err[-3000:]
        actions = sorted("generate: skipped" in out for out, _ in outputs)
        assert actions == [False, True], [out for out, _ in outputs]  # one ran it, the other found it done
        assert any("another synthrank process" in err for _, err in outputs)
        single_run_calls = len((tmp_path / "run" / "generate" / "export" / "generations.jsonl").read_text().splitlines())
        assert server.calls == single_run_calls  # nothing was generated twice
