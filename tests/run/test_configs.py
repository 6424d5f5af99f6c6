"""Every shipped config in configs/ is a valid `synthrank run` config whose paths exist here
(except the MS MARCO training folder, which is not available offline; its configs say so)."""

from __future__ import annotations

from pathlib import Path

import pytest


from synthrank.run import load_run_config
from synthrank.run.config import RunConfig
from synthrank.run.stages import STAGES
from synthrank.run.stages.train import train_config
from synthrank.cli.train import load_cli_train_config

REPO = Path(__file__).resolve().parents[2]
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
GROUP_SIZES = {"real-binary": 3, "synthetic-binary": 3, "synthetic-multilevel": 4, "synthetic-real": 7}


def _exists(path: Path) -> bool:
    return Path(path).exists()


def test_configs_name_no_workplace_path() -> None:
    """Run configs name data sets relative to the data root; only grids set our workplace's data root."""
    for path in sorted((REPO / "configs").rglob("*.yaml")):
        lines = [line for line in path.read_text().splitlines() if "shared/" in line and not line.lstrip().startswith("#")]
        allowed = [line for line in lines if line.startswith("data_root:") and "grids" in path.parts]
        assert lines == allowed, (path, lines)


def test_the_paper_configurations_exist_for_both_setups() -> None:
    names = {p.stem for p in CONFIGS}
    assert {f"{setup}-{kind}" for setup in ("scifact", "general") for kind in GROUP_SIZES} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.stem)
def test_config_validates_and_names_its_inputs(path: Path, shared_data: Path, monkeypatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("SYNTHRANK_DATA", str(shared_data))  # as --data-root does
    config, base_dir = load_run_config(path)
    kind = path.stem.split("-", 1)[1]
    assert train_config(config, base_dir).context.group_size == GROUP_SIZES[kind]
    assert load_cli_train_config(path, [], {})[0].output_dir == config.folder() / "train"  # `synthrank train` accepts it too
    inputs = {}
    for stage in config.selected_stages():
        if stage in ("generate", "mine", "evaluate"):
            inputs.update(STAGES[stage].inputs(config, base_dir))
    missing = [str(p) for p in inputs.values() if not _exists(p) and "msmarco" != p.name and "/train/model" not in str(p)]
    assert not missing, missing
    if "msmarco" in {p.name for p in inputs.values()}:
        assert "NEEDS DATA NOT AVAILABLE OFFLINE" in path.read_text()


@pytest.mark.parametrize("path", sorted((REPO / "configs" / "grids").glob("*.yaml")), ids=lambda p: p.stem)
def test_grid_file_plans_valid_cells(path: Path, monkeypatch, tmp_path: Path) -> None:
    """Every committed grid loads, and every cell's run config (with the grid's overrides) validates."""
    from synthrank.run.grid import load_grid_config, plan_cells

    monkeypatch.chdir(REPO)
    grid, base_dir = load_grid_config(path)
    grid.out = tmp_path / "out"  # plan only: nothing is written
    cells = plan_cells(grid, base_dir)
    assert len(cells) == bool(grid.baselines) + len(grid.all_runs()) * len(grid.seeds)
    for cell in cells:
        config, _ = cell.load()
        assert config.folder() == cell.run_dir


def test_fields_added_in_session_9_leave_earlier_stage_fingerprints_as_they_were(tmp_path) -> None:
    """New options at their defaults are left out of the stage configs, so committed grids do not rerun."""
    from synthrank.run.stages import STAGES

    config = RunConfig.model_validate({
        "name": "old", "run_dir": str(tmp_path / "old"),
        "generate": {"queries": "q.tsv"},
        "train": {"sources": [{"name": "s", "data": "@generate"}], "context": {"group_size": 4}},
        "evaluate": {"datasets": [{"data": "embedded"}]},
    })
    generate = STAGES["generate"].section_config(config, tmp_path)
    assert not {"style_corpus", "style_words", "collection", "offset"} & set(generate)
    assert "offset" not in STAGES["evaluate"].section_config(config, tmp_path)["datasets"][0]
    assert "log_batches" not in STAGES["train"].section_config(config, tmp_path)["training"]
    changed = config.model_copy(update={"generate": config.generate.model_copy(update={"collection": "abstracts"})})
    assert STAGES["generate"].section_config(changed, tmp_path)["collection"] == "abstracts"


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*/*.yaml")), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_committed_run_config_loads(path: Path, monkeypatch) -> None:
    """configs/dev, configs/recipes, configs/paper: valid run configs (grids are checked above)."""
    if path.parent.name == "grids":
        pytest.skip("a grid, not a run config")
    monkeypatch.chdir(REPO)
    config, base_dir = load_run_config(path)
    assert config.selected_stages() and train_config(config, base_dir).sources


SEEDED_CONFIGS = [p for p in sorted((REPO / "configs").rglob("*.yaml"))
                  if "grids" not in p.parts and "seed_from:" in p.read_text()]


@pytest.mark.parametrize("path", SEEDED_CONFIGS, ids=lambda p: str(p.relative_to(REPO / "configs")))
def test_seeded_generate_stage_selects_queries_the_committed_set_holds(path: Path, shared_data: Path, monkeypatch) -> None:
    """`synthrank run` on a committed config finds its queries (split included) and needs no generator:
    every query its generate stage selects is in the committed set it seeds from."""
    import json

    from synthrank.generate.job import load_job_queries

    monkeypatch.chdir(REPO)
    monkeypatch.setenv("SYNTHRANK_DATA", str(shared_data))
    config, base_dir = load_run_config(path)
    inputs = STAGES["generate"].inputs(config, base_dir)
    selected, _ = load_job_queries(config.generate.model_copy(update=inputs))
    seeded = set(json.loads((inputs["seed_from"] / "queries.ref.json").read_text())["ids"])
    assert selected and {q.id for q in selected} <= seeded, path
