"""The generation job: a store seeded from a bigger export exports exactly the job's queries."""

from __future__ import annotations

from pathlib import Path

from generate_fake_server import FakeOpenAI, write_test_prompt

from synthrank.generate.export import read_export
from synthrank.generate.job import GenerateJob, run_generate_job


def test_limit_caps_the_export_even_when_the_seed_holds_more(tmp_path: Path) -> None:
    (tmp_path / "q.tsv").write_text("".join(f"q{i}\tquestion number {i} about topic {i}\n" for i in range(6)))
    prompt = write_test_prompt(tmp_path)
    with FakeOpenAI() as server:
        common = {"queries": tmp_path / "q.tsv", "backend": "openai", "model": "fake", "base_url": [server.base_url],
                  "prompt": prompt, "levels": [3, 0]}
        run_generate_job(GenerateJob(**common, store=tmp_path / "big.sqlite", export=tmp_path / "big"), progress=False, log=lambda m: None)
        calls = server.calls
        summary = run_generate_job(GenerateJob(**common, limit=3, store=tmp_path / "small.sqlite", export=tmp_path / "small",
                                               seed_from=tmp_path / "big"), progress=False, log=lambda m: None)
    assert server.calls == calls and summary["planned_rows"] == 0  # everything came from the seed
    _, rows = read_export(tmp_path / "small")
    assert sorted({r["query_id"] for r in rows}) == ["q0", "q1", "q2"]
    qrels = (tmp_path / "small" / "qrels" / "train.tsv").read_text().splitlines()[1:]
    assert {line.split("\t")[0] for line in qrels} == {"q0", "q1", "q2"}


def test_offset_takes_a_disjoint_slice_and_keeps_earlier_fingerprints(tmp_path: Path) -> None:
    from synthrank.generate.job import load_job_queries
    from synthrank.run.config import RunConfig
    from synthrank.run.stages import STAGES

    (tmp_path / "q.tsv").write_text("".join(f"q{i}\tquestion number {i} about topic {i}\n" for i in range(6)))
    ids = lambda job: [q.id for q in load_job_queries(job)[0]]  # noqa: E731
    assert ids(GenerateJob(queries=tmp_path / "q.tsv", offset=2, limit=3)) == ["q2", "q3", "q4"]
    assert ids(GenerateJob(queries=tmp_path / "q.tsv", offset=4)) == ["q4", "q5"]
    assert ids(GenerateJob(queries=tmp_path / "q.tsv", offset=9)) == []
    prompt = write_test_prompt(tmp_path)
    with FakeOpenAI() as server:
        run_generate_job(GenerateJob(queries=tmp_path / "q.tsv", backend="openai", model="fake", base_url=[server.base_url],
                                     prompt=prompt, levels=[3, 0], offset=3, limit=2, store=tmp_path / "s.sqlite",
                                     export=tmp_path / "slice"), progress=False, log=lambda m: None)
    _, rows = read_export(tmp_path / "slice")
    assert sorted({r["query_id"] for r in rows}) == ["q3", "q4"] and len(rows) == 4
    # offset 0 is left out of the stage config, so runs made before the field existed stay current
    config = lambda **extra: RunConfig.model_validate({"name": "t", "generate": {"queries": "q.tsv", **extra}})  # noqa: E731
    assert "offset" not in STAGES["generate"].section_config(config(), tmp_path)
    assert STAGES["generate"].section_config(config(offset=2), tmp_path)["offset"] == 2


def test_resuming_into_the_seed_folder_with_a_smaller_limit_keeps_what_it_held(tmp_path: Path) -> None:
    """A campaign restarted at round 1 re-exports its own archive folder: no query may vanish from it."""
    (tmp_path / "q.tsv").write_text("".join(f"q{i}\tquestion number {i} about topic {i}\n" for i in range(6)))
    prompt = write_test_prompt(tmp_path)
    with FakeOpenAI() as server:
        common = {"queries": tmp_path / "q.tsv", "backend": "openai", "model": "fake", "base_url": [server.base_url],
                  "prompt": prompt, "levels": [3, 0], "export": tmp_path / "set"}
        run_generate_job(GenerateJob(**common, limit=4, store=tmp_path / "a.sqlite"), progress=False, log=lambda m: None)
        (tmp_path / "a.sqlite").unlink()  # a new session: the store is rebuilt from the committed export
        summary = run_generate_job(GenerateJob(**common, limit=2, store=tmp_path / "b.sqlite", seed_from=tmp_path / "set"),
                                   progress=False, log=lambda m: None)
    assert summary["planned_rows"] == 0
    _, rows = read_export(tmp_path / "set")
    assert sorted({r["query_id"] for r in rows}) == ["q0", "q1", "q2", "q3"]
    assert len(rows) == 8


def test_check_labels_with_writes_informativeness_and_checked_qrels(tmp_path: Path) -> None:
    import json
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
    from training_fixtures import write_tiny_static_model

    (tmp_path / "q.tsv").write_text("".join(f"q{i}\tquestion number {i} about topic {i}\n" for i in range(3)))
    model = write_tiny_static_model(tmp_path / "base")
    with FakeOpenAI() as server:
        result = run_generate_job(GenerateJob(queries=tmp_path / "q.tsv", backend="openai", model="fake", base_url=[server.base_url],
                                              prompt=write_test_prompt(tmp_path), store=tmp_path / "s.sqlite",
                                              export=tmp_path / "set", check_labels_with=str(model)),
                                  progress=False, log=lambda m: None)
    check = result["fidelity"]["label_check"]
    # The fake server's passages all contain their query: every level-0/1 passage states it and is contradicted.
    assert check["of"] == 12 and check["by_level"] == {"1": 3, "0": 3} and check["contradicted"] == 6
    checked = (tmp_path / "set" / "qrels" / "checked.tsv").read_text().splitlines()[1:]
    assert sorted(line.split("\t")[2] for line in checked) == ["2", "2", "2", "3", "3", "3"]
    assert json.loads((tmp_path / "set" / "diagnose.json").read_text())["informativeness"]["model"] == str(model)


def test_a_complete_seeded_generation_needs_no_model(tmp_path: Path, monkeypatch) -> None:
    """The committed hard set seeds a run: nothing is planned, so the 1.5B GGUF is never loaded or fetched."""
    import synthrank.generate.backends.embedded as embedded

    repo = Path(__file__).resolve().parents[2]
    seed = repo / "data" / "synthetic" / "scifact-train-qwen15b-hard"
    _, rows = read_export(seed)
    ids = list(dict.fromkeys(r["query_id"] for r in rows))[:3]
    (tmp_path / "q.tsv").write_text("".join(f"{q}\tclaim {q}\n" for q in ids))
    monkeypatch.setattr(embedded.EmbeddedBackend, "__init__", lambda *a, **k: (_ for _ in ()).throw(AssertionError("model loaded")))
    generation = read_export(seed)[0]
    job = GenerateJob(queries=tmp_path / "q.tsv", model="qwen-coder-1.5b", prompt="per-level-hard", max_tokens=220,
                      collection="abstracts of biomedical research papers", store=tmp_path / "s.sqlite",
                      export=tmp_path / "out", seed_from=seed, limit=3)
    summary = run_generate_job(job, progress=False, log=lambda m: None)
    assert summary["planned_rows"] == 0 and summary["gen_key"] == generation["gen_key"]
    assert summary["model_id"] == generation["model"]


def test_per_level_counts_write_that_many_passages_per_level(tmp_path: Path) -> None:
    """--per-level 3=2,0=1: two passages at level 3, one at level 0; a single-call prompt needs one count."""
    import pytest
    from typer.testing import CliRunner

    from synthrank.cli import app

    (tmp_path / "q.tsv").write_text("".join(f"q{i}\tquestion number {i} about topic {i}\n" for i in range(3)))
    prompt = write_test_prompt(tmp_path)
    with FakeOpenAI() as server:
        common = ["generate", "--queries", str(tmp_path / "q.tsv"), "--backend", "openai", "--model", "fake",
                  "--base-url", server.base_url, "--no-progress", "--levels", "3,0"]
        result = CliRunner().invoke(app, [*common, "--store", str(tmp_path / "s.sqlite"), "--export", str(tmp_path / "out"),
                                          "--prompt", prompt, "--per-level", "3=2,0=1"])
        assert result.exit_code == 0, result.output
        single = CliRunner().invoke(app, [*common, "--store", str(tmp_path / "t.sqlite"), "--prompt", "single-call",
                                          "--per-level", "3=2,0=1"])
        assert single.exit_code == 2 and "one count for all levels" in single.output
        bad = CliRunner().invoke(app, [*common, "--store", str(tmp_path / "u.sqlite"), "--per-level", "3=2"])
        assert bad.exit_code == 2 and "--per-level" in bad.output and "missing [0]" in bad.output
    _, rows = read_export(tmp_path / "out")
    per_query = {(r["query_id"], r["level"]) for r in rows}
    counts = {lv: sum(1 for r in rows if r["level"] == lv) for lv in (3, 0)}
    assert len(per_query) == 6 and counts == {3: 6, 0: 3}
    with pytest.raises(ValueError, match="per_level"):
        GenerateJob(queries=tmp_path / "q.tsv", levels=[3, 0], per_level={3: 2, 1: 1})


def test_a_five_level_scale_from_a_file_with_per_level_counts(tmp_path: Path) -> None:
    """Levels 4-0 with their own names and definitions; the scale is part of the generation key."""
    import yaml

    scale = {"levels": {lv: {"name": f"grade-{lv}", "definition": f"Definition number {lv}: passage graded {lv}.",
                             "instruction": f"Write a grade-{lv} passage."} for lv in range(5)}}
    (tmp_path / "levels.yaml").write_text(yaml.safe_dump(scale))
    (tmp_path / "q.tsv").write_text("q1\tquestion about volcanoes\nq2\tquestion about tomatoes\n")
    prompt = tmp_path / "five.txt"
    prompt.write_text("kind: per-level\n[user]\nQuery: ${query}\nWrite ${n} passage(s) at level ${level} (${level_name}): "
                      "${level_definition}\n${level_instruction}\n")
    with FakeOpenAI() as server:
        job = GenerateJob(queries=tmp_path / "q.tsv", backend="openai", model="fake", base_url=[server.base_url], prompt=str(prompt),
                          levels=[4, 3, 2, 1, 0], levels_file=tmp_path / "levels.yaml", per_level={4: 2, 3: 1, 2: 1, 1: 1, 0: 2},
                          store=tmp_path / "s.sqlite", export=tmp_path / "out")
        summary = run_generate_job(job, progress=False, log=lambda m: None)
        default_scale = run_generate_job(job.model_copy(update={"levels": [3, 0], "levels_file": None, "per_level": 1,
                                                                "export": tmp_path / "out2"}), progress=False, log=lambda m: None)
        sent = [m["content"] for r in server.requests for m in r["messages"] if m["role"] == "user"]
    assert summary["done_rows"] == 2 * 7 and summary["gen_key"] != default_scale["gen_key"]
    assert any("grade-4" in text and "Definition number 4" in text for text in sent)
    _, rows = read_export(tmp_path / "out")
    assert {lv: sum(r["level"] == lv for r in rows) for lv in range(5)} == {4: 4, 3: 2, 2: 2, 1: 2, 0: 4}
    import pytest

    with pytest.raises(ValueError, match="unknown relevance level 5"):
        GenerateJob(queries=tmp_path / "q.tsv", levels=[5, 4], levels_file=tmp_path / "levels.yaml")
