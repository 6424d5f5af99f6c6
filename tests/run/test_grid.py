"""`synthrank grid` on a tiny grid: the tiny static model, a tiny BEIR set, BM25 mining, 2 runs x 2
seeds + baselines, one broken run; aggregation, significance marks, the report section, reruns."""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import typer
import yaml
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))

from training_fixtures import (  # noqa: F401
    one_intra_op_thread,
    write_tiny_static_model,
    write_tiny_synthetic_set,
)

from synthrank.data import DataFormatError
from synthrank.run.grid import (
    load_grid_config,
    render_page,
    run_grid,
    write_section,
)


def _app() -> typer.Typer:
    from synthrank.cli import app

    return app


@pytest.fixture(scope="module")
def grid_file(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("grid")
    beir = write_tiny_synthetic_set(root / "beir")  # 16 queries x 4 graded passages, also the test collection
    shutil.copy(beir / "qrels" / "train.tsv", beir / "qrels" / "test.tsv")
    write_tiny_synthetic_set(root / "set")
    write_tiny_static_model(root / "base")
    run = {
        "name": "tiny",
        "allow_evaluation_queries_in_training": True,  # the toy collection is training and test set: mechanics only
        "mine": {"queries": "beir", "split": "test", "rank_range": "1:8", "count": 2, "seed": 1},
        "train": {"base_model": "base", "context": {"group_size": 4}, "loss": {"name": "ws2", "temperature": 1.0},
                  "sources": [{"name": "synthetic", "data": "set"}, {"name": "bm25", "data": "@mine", "corpus": "beir"}],
                  "training": {"batch_size": 4, "max_steps": 3, "learning_rate": 0.05, "save_steps": 100}},
        "evaluate": {"datasets": [{"data": "beir", "split": "test"}], "metrics": ["ndcg@10", "recall@10"]},
    }
    (root / "run.yaml").write_text(yaml.safe_dump(run))
    grid = {
        "name": "tiny-grid", "description": "Two losses on the tiny set.", "out": str(root / "out"), "seeds": [1, 2],
        "set": ["train.training.warmup_ratio=0.0"],
        "baselines": {"config": "run.yaml", "systems": ["base", "bm25"]},
        "reference": "ws2", "comparisons": [["kl", "bm25"], ["ws2", "kl"]],
        "runs": [{"name": "ws2", "label": "tiny ws2", "config": "run.yaml"},
                 {"name": "kl", "label": "tiny kl", "config": "run.yaml", "set": ["train.loss.name=kl"], "share_stages_from": "ws2"},
                 {"name": "broken", "config": "run.yaml", "set": ["train.sources.7.data=nowhere"]}],
    }
    (root / "grid.yaml").write_text(yaml.safe_dump(grid, sort_keys=False))
    return root / "grid.yaml"


@pytest.fixture(scope="module")
def first_run(grid_file: Path, tmp_path_factory):
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SYNTHRANK_CACHE", str(tmp_path_factory.mktemp("cache")))
        lines: list[str] = []
        outcome = run_grid(grid_file, progress=False, log=lambda m: None, echo=lines.append)
        yield outcome, lines


def test_grid_runs_every_cell_aggregates_and_keeps_going_after_a_failure(grid_file: Path, first_run) -> None:
    outcome, lines = first_run
    out = grid_file.parent / "out"
    status = {c.key: (c.status, c.action) for c in outcome.cells}
    assert status["baselines"] == ("done", "ran evaluate")
    assert status["ws2/seed-1"] == ("done", "ran mine,train,evaluate")
    for key in ("ws2/seed-2", "kl/seed-1", "kl/seed-2"):  # generate/mine shared from ws2/seed-1
        assert status[key] == ("done", "ran train,evaluate"), key
        assert not (out / key / "mine").exists()
    negatives = str(out / "ws2" / "seed-1" / "mine" / "negatives.qrels.tsv")
    kl_train = json.loads((out / "kl" / "seed-2" / "train" / "manifest.json").read_text())["config"]
    assert [s["data"] for s in kl_train["sources"] if s["name"] == "bm25"] == [negatives]
    assert kl_train["loss"]["name"] == "kl" and kl_train["training"]["seed"] == 2
    assert sorted(c.key for c in outcome.failures) == ["broken/seed-1", "broken/seed-2"]
    assert "cannot apply override" in outcome.failures[0].error
    assert len(lines) == 7 and all(" s" in line for line in lines)  # one line per cell

    summary = json.loads((out / "grid.json").read_text())
    assert summary["datasets"] == ["beir"] and summary["metrics"] == ["ndcg@10", "recall@10"]
    for run in ("ws2", "kl"):
        entry = summary["systems"][run]["datasets"]["beir"]
        assert entry["n_seeds"] == 2 and set(entry["per_seed"]) == {"1", "2"}
        for metric in ("ndcg@10", "recall@10"):
            values = [entry["per_seed"][s][metric] for s in ("1", "2")]
            assert entry["mean"][metric] == pytest.approx(np.mean(values))
            assert entry["std"][metric] == pytest.approx(np.std(values, ddof=1))
            per_seed_file = json.loads((out / run / "seed-1" / "evaluate" / "beir" / "trained" / "results.json").read_text())
            assert entry["per_seed"]["1"][metric] == per_seed_file["metrics"][metric]
        assert summary["systems"][run]["wall_seconds"]["1"] > 0
    assert summary["systems"]["broken"]["datasets"] == {}
    assert summary["systems"]["bm25"]["datasets"]["beir"]["std"] is None
    kl_sig = summary["systems"]["kl"]["datasets"]["beir"]["significance"]["ndcg@10"]
    assert set(kl_sig) == {"reference", "base"} and kl_sig["base"]["n_paired"] == 16
    assert "reference" not in summary["systems"]["ws2"]["datasets"]["beir"]["significance"]["ndcg@10"]
    assert all(v["verdict"] in ("better", "worse", None) and 0 <= v["p_t"] <= 1 for v in kl_sig.values())
    assert summary["hardware"]["cpu_count"] >= 1
    pairs = {(c["system"], c["against"]): c for c in summary["comparisons"]}
    assert set(pairs) == {("kl", "bm25"), ("ws2", "kl")} and all(c["dataset"] == "beir" for c in pairs.values())
    kl_mean = summary["systems"]["kl"]["datasets"]["beir"]["mean"]["ndcg@10"]
    ws2_mean = summary["systems"]["ws2"]["datasets"]["beir"]["mean"]["ndcg@10"]
    assert pairs[("ws2", "kl")]["mean_difference"] == pytest.approx(ws2_mean - kl_mean)
    for c in pairs.values():  # a verdict exactly when both tests reject, in the direction of the difference
        significant = c["p_t"] < 0.05 and c["p_randomization"] < 0.05
        assert c["verdict"] == (("better" if c["mean_difference"] > 0 else "worse") if significant else None)

    page = (out / "results.md").read_text()
    assert page.startswith("<!-- grid:tiny-grid:start -->") and page.rstrip().endswith("<!-- grid:tiny-grid:end -->")
    for needle in ("## Grid `tiny-grid`", "Two losses on the tiny set.", "| tiny ws2 (reference) |", "▲/▼", "△/▽",
                   "### All metrics: beir", "### Wall time", "### Paired comparisons (ndcg@10)", "| tiny ws2 | tiny kl | beir |", "### Failures", "`broken/seed-1`", "torch threads",
                   "![ndcg@10 on beir](results/tiny-grid-beir.png)"):
        assert needle in page, needle
    for name, label in (("ws2", "tiny ws2 (reference)"), ("kl", "tiny kl"), ("bm25", "bm25")):  # marks follow the verdicts
        sig = summary["systems"][name]["datasets"]["beir"]["significance"]["ndcg@10"]
        marks = "".join({"better": up, "worse": down}.get((sig.get(kind) or {}).get("verdict"), "")
                        for kind, up, down in (("reference", "▲", "▼"), ("base", "△", "▽")))
        row = next(line for line in page.splitlines() if line.startswith(f"| {label} |"))
        cell = row.split("|")[2].strip()
        assert (cell.split()[-1] == marks if marks else cell[-1].isdigit()) and (" ± " in cell) == (name != "bm25"), row
    assert (out / "results" / "tiny-grid-beir.png").is_file()


def test_rerun_skips_every_cell_and_report_section_is_replaced_in_place(grid_file: Path, first_run, tmp_path: Path) -> None:
    report = tmp_path / "docs" / "results.md"
    report.parent.mkdir()
    report.write_text("# Results\n\nHand-written introduction.\n")
    result = CliRunner().invoke(_app(), ["grid", str(grid_file), "--report", str(report), "-q"])
    assert result.exit_code == 1, result.output  # the broken run still fails
    cell_lines = [line for line in result.output.splitlines() if " seed " in line]
    assert len(cell_lines) == 7
    assert sum("skipped" in line for line in cell_lines) == 5 and sum("failed" in line for line in cell_lines) == 2
    text = report.read_text()
    assert text.startswith("# Results\n\nHand-written introduction.\n\n<!-- grid:tiny-grid:start -->\n")
    assert "![ndcg@10 on beir](results/tiny-grid-beir.png)" in text and (report.parent / "results" / "tiny-grid-beir.png").is_file()
    assert f"--report {report}" in text

    report.write_text(text.replace("Hand-written introduction.", "Edited intro.") + "\nDiscussion after the grid.\n")
    again = run_grid(grid_file, only=["baselines"], report=report, progress=False, log=lambda m: None, echo=lambda m: None)
    assert [c.action for c in again.cells] == ["skipped"]
    updated = report.read_text()
    assert updated.count("<!-- grid:tiny-grid:start -->") == 1 and updated.count("<!-- grid:tiny-grid:end -->") == 1
    assert updated.startswith("# Results\n\nEdited intro.\n\n<!-- grid:tiny-grid:start -->")
    assert updated.endswith("<!-- grid:tiny-grid:end -->\n\nDiscussion after the grid.\n")
    assert "| tiny kl |" in updated  # --only reruns a subset; the page still has every cell found on disk

    # --render-only: nothing runs (a deleted cell stays deleted), the page is rewritten from disk.
    # On a copy of the grid's folder, so that the other tests' cells stay as they were.
    import shutil
    spec = yaml.safe_load(grid_file.read_text())
    spec["out"] = str(tmp_path / "copy")
    shutil.copytree(grid_file.parent / "out", tmp_path / "copy")
    shutil.rmtree(tmp_path / "copy" / "kl" / "seed-2")
    copy = grid_file.parent / "copy.yaml"
    copy.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(_app(), ["grid", str(copy), "--report", str(report), "--render-only"])
    assert result.exit_code == 0, result.output
    assert " seed " not in result.output and not (tmp_path / "copy" / "kl" / "seed-2").exists()
    assert "| tiny kl |" in report.read_text() and "(n=1)" in report.read_text()


def _grid_on_a_copy(grid_file: Path, tmp_path: Path, name: str) -> tuple[Path, Path]:
    """``(copied out folder, grid file whose out is it)``: the first run's cells copied to ``tmp_path/name``."""
    out = grid_file.parent / "out"
    copied = tmp_path / name
    shutil.copytree(out, copied)
    spec = yaml.safe_load(grid_file.read_text())
    spec["out"] = str(copied)
    copy = tmp_path / f"{name}.yaml"
    copy.write_text(yaml.safe_dump(spec))
    shutil.copy(grid_file.parent / "run.yaml", tmp_path / "run.yaml")
    return copied, copy


def test_render_only_reads_a_cell_folder_moved_from_another_machine(grid_file: Path, first_run, tmp_path: Path) -> None:
    """Manifests record absolute paths; cells copied from elsewhere (where those paths do not exist) still render."""
    out = grid_file.parent / "out"
    moved, copy = _grid_on_a_copy(grid_file, tmp_path, "moved")
    for manifest in moved.rglob("manifest.json"):  # as written on a machine whose grid folder was /elsewhere/out
        manifest.write_text(manifest.read_text().replace(str(out), "/elsewhere/out"))
    outcome = run_grid(copy, render_only=True, progress=False, log=lambda m: None, echo=lambda m: None)
    assert outcome.cells == []
    summary = json.loads((moved / "grid.json").read_text())
    original = json.loads((out / "grid.json").read_text())
    for run in ("ws2", "kl", "bm25", "base"):
        entry = summary["systems"][run]["datasets"]["beir"]
        assert entry["mean"] == original["systems"][run]["datasets"]["beir"]["mean"], run
    for run in ("ws2", "kl"):
        assert set(summary["systems"][run]["datasets"]["beir"]["per_seed"]) == {"1", "2"}, run


def test_render_only_stops_on_an_unreadable_results_file_of_a_finished_cell(grid_file: Path, first_run, tmp_path: Path) -> None:
    """A finished cell whose results file is broken is an error naming the file, not a seed silently left out."""
    out = grid_file.parent / "out"
    copied, copy = _grid_on_a_copy(grid_file, tmp_path, "copied")
    broken = next((copied / "ws2" / "seed-2" / "evaluate").rglob("results.json"))
    broken.write_text('{"model": ')  # cut short, as by a copy that stopped half way
    result = CliRunner().invoke(_app(), ["grid", str(copy), "--render-only"])
    assert result.exit_code == 2, result.output
    assert str(broken) in result.output and "Traceback" not in result.output, result.output
    assert json.loads((copied / "grid.json").read_text()) == json.loads((out / "grid.json").read_text())


def test_a_page_whose_cells_ran_on_different_machines_says_so(grid_file: Path, first_run, tmp_path: Path) -> None:
    """bf16 (and fp32) kernels differ between CPUs: the base model's nDCG@10 moved by 0.003 between two
    machines in session 17. A page mixing cells evaluated on different machines names them; before, it
    compared them silently."""
    out = grid_file.parent / "out"
    first = json.loads((out / "ws2" / "seed-1" / "evaluate" / "manifest.json").read_text())
    assert first["machine"]["cpu"]  # every evaluate manifest records where it ran
    page = (out / "results.md").read_text()
    assert "different machines" not in page  # one machine here: nothing to say
    copied, copy = _grid_on_a_copy(grid_file, tmp_path, "copied")
    moved = copied / "ws2" / "seed-2" / "evaluate" / "manifest.json"
    manifest = json.loads(moved.read_text())
    manifest["machine"] = {"cpu": "AMD EPYC 9B14", "gpu": None, "platform": "Linux"}
    moved.write_text(json.dumps(manifest))
    result = CliRunner().invoke(_app(), ["grid", str(copy), "--render-only"])
    assert result.exit_code == 0, result.output
    page = (copied / "results.md").read_text()
    assert "different machines" in page, page
    assert "AMD EPYC 9B14: ws2 seed 2" in page and first["machine"]["cpu"] in page
    summary = json.loads((copied / "grid.json").read_text())
    assert summary["systems"]["ws2"]["machines"]["2"] == "AMD EPYC 9B14"
    manifest["machine"] = "hand-edited"  # not the object synthrank writes: read as not recorded, never a traceback
    moved.write_text(json.dumps(manifest))
    result = CliRunner().invoke(_app(), ["grid", str(copy), "--render-only"])
    assert result.exit_code == 0, result.output
    assert "not recorded: ws2 seed 2" in (copied / "results.md").read_text()


def test_dry_run_runs_nothing(grid_file: Path, tmp_path: Path) -> None:
    spec = yaml.safe_load(grid_file.read_text())
    spec["out"] = str(tmp_path / "dry")
    path = grid_file.parent / "dry.yaml"
    path.write_text(yaml.safe_dump(spec))
    result = CliRunner().invoke(_app(), ["grid", str(path), "--dry-run"])
    assert result.exit_code == 0, result.output
    broken = result.output.split("broken/seed-1:")[1]
    assert "config error:" in broken and "cannot apply override 'train.sources.7.data=nowhere'" in broken
    result = CliRunner().invoke(_app(), ["grid", str(path), "--dry-run", "--only", "kl,baselines"])
    assert result.exit_code == 0, result.output
    assert not (tmp_path / "dry").exists()
    assert "kl/seed-2:" in result.output and "baselines:" in result.output and "ws2/seed-1:" not in result.output
    assert "--set train.loss.name=kl" in result.output and "--set train.training.seed=2" in result.output
    assert "generate/mine (if configured) from ws2/seed-1" in result.output
    result = CliRunner().invoke(_app(), ["grid", str(path), "--dry-run", "--only", "nope"])
    assert result.exit_code == 2 and "unknown run(s) nope" in result.output
    result = CliRunner().invoke(_app(), ["grid", str(path), "--dry-run", "--seeds", "2"])
    assert result.exit_code == 0, result.output
    assert "ws2/seed-2:" in result.output and "kl/seed-2:" in result.output and "seed-1:" not in result.output
    assert "generate/mine (if configured) from ws2/seed-1" in result.output  # the provider is still the first seed
    result = CliRunner().invoke(_app(), ["grid", str(path), "--dry-run", "--seeds", "7"])
    assert result.exit_code == 2 and "--seeds: [7] not in the grid's seeds [1, 2]" in result.output


def test_bad_grid_files_are_named(tmp_path: Path) -> None:
    base = {"name": "g", "runs": [{"name": "a", "config": "x.yaml"}, {"name": "b", "config": "x.yaml", "share_stages_from": "a"}]}
    cases = [({"reference": "zzz"}, "reference 'zzz'"), ({"seeds": [1, 1]}, "seeds repeat"),
             ({"runs": [{"name": "a", "config": "x.yaml", "share_stages_from": "b"}, {"name": "b", "config": "x.yaml"}]}, "listed before"),
             ({"runs": [{"name": "a", "config": "x.yaml"}, {"name": "a", "config": "y.yaml"}]}, "unique"),
             ({"ablations": [{"name": "c", "config": "x.yaml"}]}, "needs a group"),
             ({"runs": [{"name": "a/b", "config": "x.yaml"}]}, "runs.0.name"),
             ({"comparisons": [["a", "zzz"]]}, "comparison ['a', 'zzz']"), ({"comparisons": [["a", "a"]]}, "two different")]
    for change, message in cases:
        (tmp_path / "g.yaml").write_text(yaml.safe_dump({**base, **change}))
        with pytest.raises(DataFormatError, match=re.escape(message)):
            load_grid_config(tmp_path / "g.yaml")
    assert load_grid_config(_write(tmp_path / "ok.yaml", base))[0].folder() == (Path("runs/grids/g")).resolve()


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data))
    return path


def test_write_section_markers(tmp_path: Path) -> None:
    page = tmp_path / "new" / "page.md"
    write_section(page, "a", "first")
    assert page.read_text() == "<!-- grid:a:start -->\nfirst\n<!-- grid:a:end -->\n"
    write_section(page, "b", "other grid")
    write_section(page, "a", "second")
    assert page.read_text() == ("<!-- grid:a:start -->\nsecond\n<!-- grid:a:end -->\n\n"
                                "<!-- grid:b:start -->\nother grid\n<!-- grid:b:end -->\n")
    page.write_text("<!-- grid:a:start -->\nno end\n")
    with pytest.raises(ValueError, match="no matching"):
        write_section(page, "a", "x")


def test_render_page_ablation_groups_and_learning_curve(tmp_path: Path) -> None:
    def system(label, kind, group, limit, mean, std):
        return {"label": label, "kind": kind, "group": group, "generate_limit": limit, "wall_seconds": {"1": 10.0, "2": 12.0},
                "datasets": {"scifact": {"n_seeds": 2, "split": "test", "mean": {"ndcg@10": mean}, "std": std and {"ndcg@10": std},
                                         "per_seed": {}}}}

    systems = {"base": system("base", "baseline", None, None, 0.5, None), "ref": system("ref", "run", None, None, 0.6, 0.01)}
    systems["base"]["wall_seconds"] = {"-": 3.0}
    for limit, mean in ((50, 0.55), (100, 0.58), (200, 0.61)):
        systems[f"n{limit}"] = system(f"n{limit}", "run", "data-size", limit, mean, 0.02)
    systems["t0.1"] = system("t0.1", "run", "temperature", None, 0.57, 0.01)
    systems["t0.1"]["wall_seconds"] = {"1": 10.0, "2": 0.0}  # seed 2 not run yet
    systems["n200"]["datasets"]["scifact"]["significance"] = {"ndcg@10": {"reference": {"verdict": "worse"}, "base": {"verdict": "better"}}}
    summary = {"name": "g", "description": "", "seeds": [1, 2], "metric": "ndcg@10", "reference": "ref", "reference_label": "ref",
               "datasets": ["scifact"], "metrics": ["ndcg@10"], "systems": systems, "cells": [], "written": "now",
               "hardware": {"platform": "p", "cpu": "c", "cpu_count": 2, "torch_threads": 1}}
    page = render_page(summary, tmp_path)
    assert "### Ablation: data-size" in page and "### Ablation: temperature" in page
    assert "| n200 | 0.610 ± 0.020 ▼△ |" in page and "| ref (reference) | 0.600 ± 0.010 |" in page
    assert "| ref (reference) | 2 | 11 | 22 |" in page and "| t0.1 | 2 | 10 | 10 |" in page  # mean over seeds that ran
    for png in ("g-scifact.png", "g-ablation-data-size.png", "g-ablation-temperature.png", "g-learning-curve.png"):
        assert (tmp_path / "results" / png).is_file() and f"(results/{png})" in page, png
