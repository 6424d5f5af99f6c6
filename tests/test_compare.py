"""Comparison tables from results.json files: values, markers, naming, errors, plots."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from synthrank.data.errors import DataFormatError
from synthrank.cli.evaluate import compare_command
from synthrank.evaluate.compare import (
    ComparisonError,
    compare_results,
    load_results,
    system_names,
)
from synthrank.evaluate.plots import count_wins_losses_ties, plot_metric_bars, plot_per_query_differences

N_QUERIES = 60


def write_results(
    folder: Path,
    model: str,
    dataset: str,
    scores,
    split: str = "test",
    relevance_level: int = 1,
    query_ids=None,
) -> Path:
    """Write a results.json whose ndcg@10 per query is ``scores`` (map is half of it)."""
    scores = [float(s) for s in scores]
    query_ids = query_ids or [f"q{i}" for i in range(len(scores))]
    per_query = {q: {"ndcg@10": s, "map": s / 2} for q, s in zip(query_ids, scores, strict=True)}
    data = {
        "metrics": {"ndcg@10": float(np.mean(scores)), "map": float(np.mean(scores)) / 2},
        "per_query": per_query,
        "model": model,
        "model_path": model,
        "data": f"/data/{dataset}",
        "dataset": dataset,
        "split": split,
        "relevance_level": relevance_level,
        "timings": {"total_s": 1.0},
        "settings": {},
    }
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "results.json"
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def baseline_scores() -> np.ndarray:
    return np.random.default_rng(0).uniform(0.1, 0.7, N_QUERIES)


@pytest.fixture
def three_systems(tmp_path, baseline_scores) -> list[Path]:
    """bm25 (baseline), a clearly better system, and one that differs only by noise."""
    rng = np.random.default_rng(1)
    better = np.clip(baseline_scores + 0.2 + rng.normal(0, 0.05, N_QUERIES), 0, 1)
    noise = np.clip(baseline_scores + rng.normal(0, 0.02, N_QUERIES) * np.resize([1, -1], N_QUERIES), 0, 1)
    return [
        write_results(tmp_path / "bm25", "bm25", "scifact", baseline_scores),
        write_results(tmp_path / "better", "better", "scifact", better),
        write_results(tmp_path / "noise", "noise", "scifact", noise),
    ]


def table_row(markdown: str, row_name: str) -> list[str]:
    for line in markdown.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells and cells[0] == row_name:
            return cells[1:]
    raise AssertionError(f"no row {row_name!r} in\n{markdown}")


# ----------------------------------------------------------------------------- table and markers


def test_significant_improvement_is_marked_and_noise_is_not(three_systems):
    table = compare_results(load_results(three_systems))
    markdown = table.render_markdown()

    assert table.baseline == "bm25"
    assert table_row(markdown, "bm25 (baseline)")[0] == f"{table.cells[('bm25', table.columns[0])].value:.3f}"
    better_value, better_mean = table_row(markdown, "better")
    assert better_value.endswith("▲") and better_mean == better_value.removesuffix(" ▲")
    noise_value, _ = table_row(markdown, "noise")
    assert "▲" not in noise_value and "▼" not in noise_value
    assert "paired t-test and a paired randomization test" in markdown
    assert f"better {N_QUERIES}" in markdown  # queries paired


def test_significantly_worse_is_marked_down(tmp_path, baseline_scores):
    paths = [
        write_results(tmp_path / "bm25", "bm25", "scifact", baseline_scores),
        write_results(tmp_path / "worse", "worse", "scifact", baseline_scores - 0.1),
    ]
    table = compare_results(load_results(paths))
    assert table.cells[("worse", table.columns[0])].verdict == "worse"
    assert table_row(table.render_markdown(), "worse")[0].endswith("▼")


def test_values_rows_columns_and_mean(tmp_path):
    paths = [
        write_results(tmp_path / "a" / "scifact", "bm25", "scifact", [0.2, 0.4]),
        write_results(tmp_path / "a" / "nfcorpus", "bm25", "nfcorpus", [0.1, 0.3]),
        write_results(tmp_path / "b" / "scifact", "dense", "scifact", [0.6, 0.8]),
        write_results(tmp_path / "b" / "nfcorpus", "dense", "nfcorpus", [0.5, 0.5]),
        write_results(tmp_path / "c" / "scifact", "partial", "scifact", [0.3, 0.3]),
    ]
    table = compare_results(load_results(paths), test="t")
    markdown = table.render_markdown()
    assert "| system | scifact | nfcorpus | mean |" in markdown
    assert table_row(markdown, "bm25 (baseline)") == ["0.300", "0.200", "0.250"]
    assert [v.split()[0] for v in table_row(markdown, "dense")] == ["0.700", "0.500", "0.600"]
    assert table_row(markdown, "partial") == ["0.300", "–", "–"]


def test_marks_only_when_the_chosen_tests_agree(tmp_path):
    # Five queries all improved by exactly 0.1: the t-test gives p = 0 (zero variance) but the
    # exact randomization test can do no better than 2 / 2**5 = 0.0625 > 0.05.
    base = [0.1, 0.2, 0.3, 0.4, 0.5]
    paths = [
        write_results(tmp_path / "bm25", "bm25", "scifact", base),
        write_results(tmp_path / "up", "up", "scifact", [b + 0.1 for b in base]),
    ]
    results = load_results(paths)
    by_test = {test: compare_results(results, test=test) for test in ("t", "randomization", "both")}
    assert by_test["t"].cells[("up", by_test["t"].columns[0])].verdict == "better"
    assert by_test["randomization"].cells[("up", by_test["t"].columns[0])].verdict is None
    assert by_test["both"].cells[("up", by_test["t"].columns[0])].verdict is None
    assert table_row(by_test["t"].render_markdown(), "up")[0] == "0.400 ▲"
    assert table_row(by_test["both"].render_markdown(), "up")[0] == "0.400"
    assert "p < 0.05 in a paired t-test" in by_test["t"].render_markdown()
    assert "in a paired randomization test with 10000 resamples" in by_test["randomization"].render_markdown()
    cell = by_test["randomization"].cells[("up", by_test["t"].columns[0])]
    assert cell.p_randomization == pytest.approx(2 / 32)
    assert cell.p_t is None


def test_alpha_controls_marking(tmp_path):
    base = [0.1, 0.2, 0.3, 0.4, 0.5]
    paths = [
        write_results(tmp_path / "bm25", "bm25", "scifact", base),
        write_results(tmp_path / "up", "up", "scifact", [b + 0.1 for b in base]),
    ]
    table = compare_results(load_results(paths), alpha=0.1, test="randomization")
    assert table.cells[("up", table.columns[0])].verdict == "better"
    assert "p < 0.1 " in table.render_markdown()


def test_baseline_choice(three_systems):
    results = load_results(three_systems)
    assert compare_results(results).baseline == "bm25"
    table = compare_results(results, baseline="better")
    assert table.systems == ["better", "bm25", "noise"]
    assert table_row(table.render_markdown(), "bm25")[0].endswith("▼")
    with pytest.raises(ComparisonError, match=r"unknown baseline 'bm2'.*'bm25', 'better', 'noise'"):
        compare_results(results, baseline="bm2")


def test_metric_name_is_case_insensitive_and_other_metrics_work(three_systems):
    table = compare_results(load_results(three_systems), metric="MAP")
    assert table.metric == "map"
    assert table.render_markdown().startswith("**map**")


def test_mixed_splits_get_split_in_column_label(tmp_path):
    paths = [
        write_results(tmp_path / "dev", "bm25", "msmarco", [0.2, 0.3], split="dev"),
        write_results(tmp_path / "test", "bm25", "scifact", [0.4, 0.5], split="test"),
    ]
    markdown = compare_results(load_results(paths)).render_markdown()
    assert "| system | msmarco (dev) | scifact (test) | mean |" in markdown


def test_to_dict_is_json_ready(three_systems):
    data = compare_results(load_results(three_systems)).to_dict()
    json.dumps(data)
    assert data["baseline"] == "bm25" and data["systems"] == ["bm25", "better", "noise"]
    better = next(c for c in data["cells"] if c["system"] == "better")
    assert better["verdict"] == "better" and better["n_paired"] == N_QUERIES
    assert better["p_t"] < 0.01 and better["p_randomization"] < 0.01
    assert data["mean"]["bm25"] == pytest.approx(data["cells"][0]["value"])


# ----------------------------------------------------------------------------- system names


def test_shared_display_name_is_disambiguated_by_parent_folder(tmp_path):
    paths = [
        write_results(tmp_path / "run-a", "model", "scifact", [0.2, 0.4]),
        write_results(tmp_path / "run-b", "model", "scifact", [0.3, 0.5]),
    ]
    table = compare_results(load_results(paths))
    assert table.systems == ["model (run-a)", "model (run-b)"]
    assert "| model (run-a) (baseline) |" in table.render_markdown()


def test_disambiguation_is_consistent_across_datasets(tmp_path):
    paths = [
        write_results(tmp_path / "runs" / "base" / "scifact", "model", "scifact", [0.2, 0.4]),
        write_results(tmp_path / "runs" / "tuned" / "scifact", "model", "scifact", [0.3, 0.5]),
        write_results(tmp_path / "runs" / "base" / "nfcorpus", "model", "nfcorpus", [0.1, 0.2]),
        write_results(tmp_path / "runs" / "tuned" / "nfcorpus", "model", "nfcorpus", [0.2, 0.2]),
        write_results(tmp_path / "runs" / "bm25" / "nfcorpus", "bm25", "nfcorpus", [0.2, 0.2]),
    ]
    names = system_names(load_results(paths))
    assert names == ["model (base)", "model (tuned)", "model (base)", "model (tuned)", "bm25"]


def test_same_name_without_paths_is_an_error():
    result = {"metrics": {}, "per_query": {"q": {"ndcg@10": 1.0}}, "model": "m", "dataset": "d", "split": "test"}
    with pytest.raises(ComparisonError, match="cannot be told apart"):
        compare_results([result, dict(result)])


# ----------------------------------------------------------------------------- query pairing


def test_partial_overlap_is_paired_on_shared_queries(tmp_path):
    paths = [
        write_results(tmp_path / "bm25", "bm25", "scifact", [0.1, 0.2, 0.3, 0.4], query_ids=["a", "b", "c", "d"]),
        write_results(tmp_path / "x", "x", "scifact", [0.5, 0.6, 0.7], query_ids=["b", "c", "e"]),
    ]
    table = compare_results(load_results(paths))
    cell = table.cells[("x", table.columns[0])]
    assert cell.n_paired == 2
    assert cell.paired.query_ids == ("b", "c")
    assert cell.mean_difference == pytest.approx(0.3)
    assert "x 2 (only these are tested: 2 baseline queries missing from x, 1 of its queries missing" in (
        table.render_markdown()
    )


def test_no_shared_queries_is_an_error_naming_the_files(tmp_path):
    paths = [
        write_results(tmp_path / "bm25", "bm25", "scifact", [0.1, 0.2], query_ids=["a", "b"]),
        write_results(tmp_path / "x", "x", "scifact", [0.5, 0.6], query_ids=["c", "d"]),
    ]
    with pytest.raises(ComparisonError, match=r"x/results\.json and the baseline .*bm25/results\.json share no query"):
        compare_results(load_results(paths))


def test_settings_that_differ_within_a_dataset_are_noted(tmp_path):
    paths = [
        write_results(tmp_path / "bm25", "bm25", "dl19", [0.1, 0.2], relevance_level=2),
        write_results(tmp_path / "x", "x", "dl19", [0.5, 0.6], relevance_level=1),
    ]
    assert "warning: relevance_level differs between systems (bm25=2, x=1)" in (
        compare_results(load_results(paths)).render_markdown()
    )


# ----------------------------------------------------------------------------- loading errors


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{\n  "metrics": {},\n  "per_query": {,\n}')
    with pytest.raises(DataFormatError, match=r"broken\.json:3: -: not valid JSON"):
        load_results([path])


def test_missing_key_names_file_and_key(tmp_path):
    path = tmp_path / "other.json"
    path.write_text(json.dumps({"metrics": {}, "model": "m", "dataset": "d", "split": "test"}))
    with pytest.raises(DataFormatError, match=r"other\.json:0: per_query: missing: not a synthrank results\.json"):
        load_results([path])


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "expected a results.json object, got a JSON list"),
        ('{"metrics": {}, "per_query": {}, "model": "m", "dataset": "d", "split": "t"}', "per_query: is empty"),
        (
            '{"metrics": [], "per_query": {"q": {}}, "model": "m", "dataset": "d", "split": "t"}',
            "metrics: expected a JSON object",
        ),
    ],
)
def test_malformed_results_are_refused(tmp_path, content, message):
    path = tmp_path / "results.json"
    path.write_text(content)
    with pytest.raises(DataFormatError, match=str(path).replace(".", r"\.")) as error:
        load_results([path])
    assert message in str(error.value)


def test_missing_file_and_folder_are_refused(tmp_path):
    with pytest.raises(DataFormatError, match="nope.json:0: -: file not found"):
        load_results([tmp_path / "nope.json"])
    with pytest.raises(DataFormatError, match="is a folder"):
        load_results([tmp_path])


def test_same_file_twice_is_refused(three_systems):
    with pytest.raises(ValueError, match="given twice"):
        load_results([three_systems[0], three_systems[0]])


def test_unknown_metric_lists_available_ones(three_systems):
    with pytest.raises(ComparisonError, match=r"bm25/results\.json: metric 'recall@100' is not in .*map, ndcg@10"):
        compare_results(load_results(three_systems), metric="recall@100")


def test_query_missing_the_metric_is_named(tmp_path):
    path = write_results(tmp_path / "x", "x", "scifact", [0.1, 0.2])
    data = json.loads(path.read_text())
    del data["per_query"]["q1"]["ndcg@10"]
    del data["metrics"]["ndcg@10"]
    path.write_text(json.dumps(data))
    with pytest.raises(DataFormatError, match=r"per_query\.q1: has no 'ndcg@10' score"):
        compare_results(load_results([path]))


# ----------------------------------------------------------------------------- command and plots


def test_compare_command_writes_plot_and_json(three_systems, tmp_path):
    out_png = tmp_path / "out" / "diff.png"
    out_json = tmp_path / "out" / "comparison.json"
    text = compare_command(three_systems, metric="ndcg@10", out_png=out_png, out_json=out_json)
    assert "| better |" in text and str(out_png) in text
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out_png.stat().st_size > 5000
    assert json.loads(out_json.read_text())["baseline"] == "bm25"


def test_compare_command_defaults_to_first_file_as_baseline(three_systems):
    text = compare_command(list(reversed(three_systems)), test="t")
    assert "| noise (baseline) |" in text


def test_plot_per_query_differences_from_results(tmp_path, three_systems):
    out_png = plot_per_query_differences(load_results(three_systems), "better", "map", tmp_path / "d.png")
    assert out_png.stat().st_size > 5000


def test_plot_needs_something_besides_the_baseline(tmp_path, three_systems):
    with pytest.raises(ValueError, match="nothing to plot"):
        plot_per_query_differences(load_results(three_systems[:1]), None, None, tmp_path / "d.png")


def test_plot_metric_bars(tmp_path, three_systems):
    table = compare_results(load_results(three_systems), test="t")
    out_png = plot_metric_bars(table, None, tmp_path / "bars" / "bars.png")
    assert out_png.read_bytes()[:4] == b"\x89PNG" and out_png.stat().st_size > 5000


def test_count_wins_losses_ties():
    assert count_wins_losses_ties(np.array([0.1, -0.2, 0.0, 1e-12, 0.3])) == (2, 1, 2)
