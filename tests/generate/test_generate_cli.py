"""The typer commands end to end against the fake server: run, status, export (+HF), seed, diagnose, errors."""

import json
import math
import sys
from pathlib import Path

import pytest
from generate_fake_server import FakeOpenAI
from typer.testing import CliRunner

from synthrank.cli.generate import generate_app

runner = CliRunner()


def _queries(tmp_path, n=6):
    path = tmp_path / "q.jsonl"
    topics = ["volcano eruption lava", "tomato ripening time", "bitcoin mining energy", "roman empire fall",
              "insulin diabetes dose", "jazz saxophone history", "glacier melting speed", "chess opening theory"]
    path.write_text("".join(json.dumps({"_id": f"q{i}", "text": f"what about {topics[i % 8]} {i}"}) + "\n" for i in range(n)))
    return path


def _generate(tmp_path, server, *extra):
    return runner.invoke(generate_app, ["--queries", str(_queries(tmp_path)), "--store", str(tmp_path / "s.sqlite"), "--backend", "openai",
                                        "--model", "fake", "--base-url", server.base_url, "--no-progress", "--prompt", "single-call", *extra])


@pytest.mark.parametrize("command", [[], ["status"], ["export"], ["diagnose"], ["models"], ["study"]])
def test_every_help_has_an_example(command):
    result = runner.invoke(generate_app, [*command, "--help"])
    assert result.exit_code == 0 and "Example" in result.output and "synthrank generate" in result.output


def test_bad_query_file_gives_file_line_field_error(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"_id": "1", "text": "fine"}\n{"_id": "2"}\n')
    result = runner.invoke(generate_app, ["--queries", str(bad), "--store", str(tmp_path / "s.sqlite")])
    assert result.exit_code == 2 and "bad.jsonl:2: text" in result.output
    assert not (tmp_path / "s.sqlite").exists()
    result = runner.invoke(generate_app, ["--queries", str(_queries(tmp_path)), "--store", str(tmp_path / "s.sqlite"), "--levels", "3,7"])
    assert result.exit_code == 2 and "unknown relevance level 7" in result.output


def test_run_status_export_seed_and_hf(tmp_path):
    with FakeOpenAI() as server:
        result = _generate(tmp_path, server, "--export", str(tmp_path / "set"))
        assert result.exit_code == 0, result.output
        calls = server.calls
        assert _generate(tmp_path, server).exit_code == 0 and server.calls == calls  # nothing left to do
    status = runner.invoke(generate_app, ["status", "--store", str(tmp_path / "s.sqlite"), "--json"])
    info = json.loads(status.output)[0]
    assert info["done"] == 24 and info["failed"] == 0 and info["prompt_name"] == "single-call"
    out = tmp_path / "set"
    corpus = [json.loads(line) for line in (out / "corpus.jsonl").read_text().splitlines()]
    qrels = (out / "qrels" / "train.tsv").read_text().splitlines()
    assert qrels[0] == "query-id\tcorpus-id\tscore" and len(qrels) - 1 == len(corpus) == 24
    assert len({d["_id"] for d in corpus}) == 24 and corpus[0]["_id"].startswith("s-")
    ref = json.loads((out / "queries.ref.json").read_text())
    assert ref["ids"] == [f"q{i}" for i in range(6)] and not (out / "queries.jsonl").exists()
    card = json.loads((out / "card.json").read_text())
    assert card["counts"]["kept"] == 24 and card["generation"]["prompt_hash"] and "## Filters" in (out / "README.md").read_text()
    # a fresh store seeded from the export needs no calls at all
    with FakeOpenAI() as server:
        seeded = runner.invoke(generate_app, ["--queries", str(tmp_path / "q.jsonl"), "--store", str(tmp_path / "fresh.sqlite"),
                                              "--backend", "openai", "--model", "fake", "--base-url", server.base_url,
                                              "--no-progress", "--prompt", "single-call", "--seed-from", str(out)])
        assert seeded.exit_code == 0, seeded.output
        assert server.calls == 0
    again = runner.invoke(generate_app, ["export", "--store", str(tmp_path / "fresh.sqlite"), "--queries", str(tmp_path / "q.jsonl"),
                                         "--out", str(tmp_path / "set2"), "--hf", "--include-query-text"])
    assert again.exit_code == 0, again.output
    assert (tmp_path / "set2" / "corpus.jsonl").read_text() == (out / "corpus.jsonl").read_text()  # stable ids
    from datasets import load_from_disk

    ds = load_from_disk(str(tmp_path / "set2" / "hf"))
    assert len(ds) == 24 and set(ds.column_names) == {"query_id", "query", "passage_id", "level", "passage"}


def test_two_prompts_are_two_generations_not_a_mix(tmp_path):
    with FakeOpenAI() as server:
        assert _generate(tmp_path, server).exit_code == 0
        assert _generate(tmp_path, server, "--prompt", "per-level").exit_code == 0
    info = json.loads(runner.invoke(generate_app, ["status", "--store", str(tmp_path / "s.sqlite"), "--json"]).output)
    assert [g["prompt_name"] for g in info] == ["single-call", "per-level"] and all(g["done"] == 24 for g in info)
    result = runner.invoke(generate_app, ["export", "--store", str(tmp_path / "s.sqlite"), "--queries", str(tmp_path / "q.jsonl"),
                                          "--out", str(tmp_path / "x")])
    assert result.exit_code == 2 and "2 generations, choose one with --generation" in result.output
    first = info[0]["gen_key"]
    args = ["export", "--store", str(tmp_path / "s.sqlite"), "--queries", str(tmp_path / "q.jsonl"), "--out", str(tmp_path / "x")]
    assert runner.invoke(generate_app, [*args, "--generation", first[:6]]).exit_code == 0
    clash = runner.invoke(generate_app, [*args, "--generation", info[1]["gen_key"]])
    assert clash.exit_code == 2 and f"holds generation {first}" in clash.output


def _handmade_set(tmp_path):
    from synthrank.data import write_jsonl, write_qrels_tsv

    queries = tmp_path / "q.tsv"
    queries.write_text("a\thow long does it take a tomato to ripen\nb\twhat causes volcanic eruptions\n")
    texts = {
        ("a", 3): "Tomatoes take six to eight weeks to ripen after pollination; cherry tomatoes ripen faster.",
        ("a", 1): "The tomato plant came to Europe from South America and was once thought poisonous.",
        ("a", 0): "The Baltic Sea is brackish because many rivers flow into it.",
        ("b", 3): "Volcanic eruptions are caused by magma rising as pressure from gas in the magma builds up until it erupts.",
        ("b", 1): "Famous volcanoes include Vesuvius, Etna and Fuji, visited by many tourists.",
        ("b", 0): "Jazz saxophone players of the 1950s developed the bebop style in New York clubs.",
    }
    folder = tmp_path / "set"
    write_jsonl(folder / "corpus.jsonl", ({"_id": f"{q}{lv}", "title": "", "text": t} for (q, lv), t in texts.items()))
    qrels = {}
    for (q, lv) in texts:
        qrels.setdefault(q, {})[f"{q}{lv}"] = lv
    (folder / "qrels").mkdir()
    write_qrels_tsv(folder / "qrels" / "train.tsv", qrels)
    return folder, queries


def test_diagnose_orders_levels_on_a_handmade_set_bm25(tmp_path):
    _check_diagnose(tmp_path, ("bm25",))


@pytest.mark.slow
def test_diagnose_orders_levels_on_a_handmade_set_dense(tmp_path):
    _check_diagnose(tmp_path, ("bm25", "dense"))


def _check_diagnose(tmp_path, judges):
    folder, queries = _handmade_set(tmp_path)
    result = runner.invoke(generate_app, ["diagnose", "--export", str(folder), "--queries", str(queries), "--judges", ",".join(judges)])
    assert result.exit_code == 0, result.output
    report = json.loads((folder / "diagnose.json").read_text())
    for judge in judges:
        j = report["judges"][judge]
        assert j["mean_by_level"]["3"] > j["mean_by_level"]["0"]
        assert j["kendall_tau_mean"] > 0.5 and j["queries_with_tau"] == 2
    assert (folder / "diagnose.png").stat().st_size > 1000 and "Kendall tau" in result.output


def test_study_measures_a_generation_from_its_store(tmp_path):
    from synthrank.data import load_queries
    from synthrank.generate.store import Store
    from synthrank.generate.study import measure_generation, render_study

    with FakeOpenAI() as server:
        assert _generate(tmp_path, server).exit_code == 0
    with Store(tmp_path / "s.sqlite") as st:
        key = st.generations()[0]["gen_key"]
    queries = load_queries(tmp_path / "q.jsonl")
    row = measure_generation(tmp_path / "s.sqlite", key, list(queries.values())[:4], queries, ["bm25"])
    assert row["rows"] == 16 and row["queries"] == 4 and row["prompt"] == "single-call" and row["model"] == "openai:fake"
    assert row["tok_s_per_request"] > 0 and "| openai:fake | single-call | 4 | 16 |" in render_study([row])
    assert len(row["bm25_tau_by_query"]) == row["queries_with_tau"]


def test_fidelity_keeps_the_per_query_taus_behind_the_mean():
    from synthrank.data import Query
    from synthrank.generate.diagnose import fidelity

    queries = {"a": Query(_id="a", text="solar panel efficiency"), "b": Query(_id="b", text="river flood defences"),
               "c": Query(_id="c", text="violin strings")}
    rows = [("a", 3, "solar panel efficiency rises with solar panel cooling"), ("a", 1, "a panel discussed efficiency"),
            ("a", 0, "violin makers use spruce"), ("b", 3, "river flood defences include levees on the river"),
            ("b", 0, "chess openings"), ("b", 1, "flood insurance"), ("c", 3, "violin strings are made of gut")]
    judge = fidelity(rows, queries, ["bm25"])["judges"]["bm25"]
    taus = judge["_tau_by_query"]  # c has one level only: no tau
    assert set(taus) == {"a", "b"} and judge["queries_with_tau"] == 2
    assert abs(sum(taus.values()) / 2 - judge["kendall_tau_mean"]) < 1e-4 and taus["a"] > 0.99


def test_compare_prompts_pairs_queries_and_tests_the_difference():
    from synthrank.generate.study import compare_prompts, render_comparisons

    base = {f"q{i}": 0.2 + 0.01 * (i % 5) for i in range(30)}
    better = {q: t + 0.3 for q, t in base.items() if q != "q0"}  # q0 lost its levels to the filters
    same = {q: t + (0.05 if i % 2 else -0.05) for i, (q, t) in enumerate(base.items())}
    rows = [{"model": "m", "prompt": "per-level", "dense_tau_by_query": base, "bm25_tau_by_query": base},
            {"model": "m", "prompt": "per-level-example", "dense_tau_by_query": better, "bm25_tau_by_query": better},
            {"model": "m", "prompt": "single-call", "dense_tau_by_query": same, "bm25_tau_by_query": same},
            {"model": "other", "prompt": "single-call", "dense_tau_by_query": same}]  # no baseline row: skipped
    out = {c["prompt"]: c for c in compare_prompts(rows)}
    assert set(out) == {"per-level-example", "single-call"} and all(c["judge"] == "dense" for c in out.values())
    ex = out["per-level-example"]
    assert ex["queries"] == 29 and abs(ex["difference"] - 0.3) < 1e-9 and ex["ci95"][0] > 0.29 and ex["p_randomization"] < 0.01
    assert out["single-call"]["queries"] == 30 and out["single-call"]["p_randomization"] > 0.5
    assert compare_prompts(rows, judge="bm25")[0]["judge"] == "bm25"
    assert "| m | per-level-example | per-level | dense | 29 | 0.3 |" in render_comparisons(list(out.values()))


def test_study_rerun_keeps_the_measured_run_speed_and_rejects_a_foreign_file(tmp_path):
    from synthrank.data import DataFormatError
    from synthrank.generate.study import keep_run_speed, previous_rows

    path = tmp_path / "study.json"
    path.write_text(json.dumps([{"model": "m", "prompt": "p", "rows": 8, "tok_s_run": 12.5}]))
    earlier = previous_rows(path)[("m", "p")]
    assert keep_run_speed({"rows": 8, "tok_s_run": None}, earlier)["tok_s_run"] == 12.5
    assert keep_run_speed({"rows": 12, "tok_s_run": None}, earlier)["tok_s_run"] is None  # other rows: not the same run
    assert keep_run_speed({"rows": 8, "tok_s_run": 9.0}, earlier)["tok_s_run"] == 9.0  # a new measure wins
    assert previous_rows(tmp_path / "absent.json") == {}
    path.write_text('{"not": "rows"}')
    with pytest.raises(DataFormatError, match="study.json"):
        previous_rows(path)


def test_informativeness_counts_the_pairs_the_base_model_misorders():
    from synthrank.data import Query
    from synthrank.generate.diagnose import contradicted_rows, informativeness

    queries = {"a": Query(_id="a", text="qa"), "b": Query(_id="b", text="qb")}
    rows = [("a", 3, "x"), ("a", 2, "y"), ("a", 0, "z"), ("b", 3, "u"), ("b", 0, "v")]
    scores = [0.9, 0.95, 0.1, 0.2, 0.7]  # a: 3<2 misordered, 3>0 and 2>0 right; b: 3<0 misordered
    info = informativeness(rows, queries, "any", scores=scores)
    assert info["pairs"] == 4 and info["misordered_share"] == 0.5 and info["queries_with_a_misordered_pair"] == 1.0
    assert info["by_level_pair"] == {"3>2": {"pairs": 1, "misordered_share": 1.0}, "3>0": {"pairs": 2, "misordered_share": 0.5},
                                     "2>0": {"pairs": 1, "misordered_share": 0.0}}
    # Label check: b's level 0 beats its level 3 under both judges -> contradicted; a's level 2 beats level 3
    # under the dense judge only and is a neighbouring level anyway -> kept.
    bm25 = [2.0, 3.0, 0.1, 1.0, 4.0]
    assert contradicted_rows(rows, bm25, scores) == {4: "level 0 above level 3 under bm25 and the base model"}
    assert contradicted_rows(rows, [2.0, 3.0, 0.1, 5.0, 4.0], scores) == {}  # bm25 disagrees: kept
    # A level-0/1 passage that restates the whole query is contradicted too (levels >= 2 may restate it).
    restating = [("a", 3, "QA: yes."), ("a", 1, "Qa! And more."), ("a", 0, "nothing")]
    assert contradicted_rows(restating, [0, 0, 0], [0, 0, 0], query_texts={"a": "qa"}) == {1: "level 1 states the query"}


def test_diagnose_with_a_base_model_writes_informativeness_and_checked_qrels(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
    from training_fixtures import write_tiny_static_model

    folder, queries = _handmade_set(tmp_path)
    model = write_tiny_static_model(tmp_path / "base")
    result = runner.invoke(generate_app, ["diagnose", "--export", str(folder), "--queries", str(queries), "--judges", "bm25",
                                          "--base-model", str(model), "--write-checked"])
    assert result.exit_code == 0, result.output
    report = json.loads((folder / "diagnose.json").read_text())
    assert report["informativeness"]["pairs"] == 6 and 0 <= report["informativeness"]["misordered_share"] <= 1
    check = report["label_check"]
    assert check["of"] == 6 and (folder / "qrels" / "checked.tsv").is_file()
    kept = len((folder / "qrels" / "checked.tsv").read_text().splitlines()) - 1
    assert kept == 6 - check["contradicted"]
    assert "Informativeness" in (folder / "diagnose.md").read_text() and "label check" in result.output


def test_a_dense_judge_of_your_choice(tmp_path):
    """--judges dense:MODEL scores with any sentence-transformers model (here a tiny static one); a bad name is one line."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "train"))
    from training_fixtures import write_tiny_static_model

    model = write_tiny_static_model(tmp_path / "judge")
    folder, queries = _handmade_set(tmp_path)
    result = runner.invoke(generate_app, ["diagnose", "--export", str(folder), "--queries", str(queries), "--judges", f"bm25,dense:{model}"])
    assert result.exit_code == 0, result.output
    report = json.loads((folder / "diagnose.json").read_text())
    assert set(report["judges"]) == {"bm25", f"dense:{model}"} and report["judges"][f"dense:{model}"]["pair_accuracy"] is not None
    bad = runner.invoke(generate_app, ["diagnose", "--export", str(folder), "--queries", str(queries), "--judges", "oracle"])
    assert bad.exit_code == 2 and "unknown judge 'oracle'" in bad.output


def test_an_llm_judge_grades_every_passage_with_a_confusion_table(tmp_path):
    """--judges llm through any backend (the fake server here); the generator itself is refused as judge."""
    folder, queries = _handmade_set(tmp_path)
    with FakeOpenAI() as server:
        args = ["diagnose", "--export", str(folder), "--queries", str(queries), "--judges", "bm25,llm",
                "--llm-backend", "openai", "--llm-model", "judge-model", "--llm-base-url", server.base_url]
        result = runner.invoke(generate_app, args)
        assert result.exit_code == 0, result.output
        report = json.loads((folder / "diagnose.json").read_text())
        llm = report["judges"]["llm"]
        assert llm["model"] == "openai:judge-model" and llm["ungraded"] == 0
        assert sum(sum(row.values()) for row in llm["confusion"].values()) == 6 and set(llm["confusion"]) == {"3", "1", "0"}
        assert "Confusion, llm" in result.output and "intended level" in result.output
        (folder / "generation.json").write_text(json.dumps({"model": "openai:judge-model"}))
        same = runner.invoke(generate_app, args)
        assert same.exit_code == 2 and "judge with another model" in same.output
    missing = runner.invoke(generate_app, ["diagnose", "--export", str(folder), "--queries", str(queries), "--judges", "llm"])
    assert missing.exit_code == 2 and "--llm-model" in missing.output


def test_an_llm_judge_by_log_probabilities_scores_the_expected_grade(tmp_path):
    """--llm-mode logprobs: one token, top_logprobs asked, the score is sum p(g) g / sum p(g) over grade tokens."""
    from synthrank.generate.llm_judge import expected_grade

    assert expected_grade({"2": math.log(0.6), " 1": math.log(0.3), "The": math.log(0.1)}, [0, 1, 2, 3]) == pytest.approx(5 / 3)
    assert expected_grade({"The": 0.0, "7": -1.0}, [0, 1, 2, 3]) is None and expected_grade(None, [0, 1]) is None
    folder, queries = _handmade_set(tmp_path)
    with FakeOpenAI() as server:
        args = ["diagnose", "--export", str(folder), "--queries", str(queries), "--judges", "llm", "--llm-mode", "logprobs",
                "--llm-backend", "openai", "--llm-model", "judge-model", "--llm-base-url", server.base_url]
        result = runner.invoke(generate_app, args)
        assert result.exit_code == 0, result.output
        sent = [r for r in server.requests if r.get("logprobs")]
    assert len(sent) == 6 and all(r["max_tokens"] == 1 and r["top_logprobs"] == 10 and "response_format" not in r for r in sent)
    llm = json.loads((folder / "diagnose.json").read_text())["judges"]["llm"]
    assert llm["mode"] == "logprobs" and llm["ungraded"] == 0
    # the fake's answer token g has p 0.6 and its neighbour 0.3: every pair scores (0.6 g + 0.3 g') / 0.9, never an integer
    means = [float(m) for m in llm["mean_by_level"].values()]
    assert means and all(0 < m < 3 for m in means) and any(abs(m - round(m)) > 0.05 for m in means), means
    bad = runner.invoke(generate_app, args[:-6] + ["--llm-mode", "vibes", "--llm-backend", "openai", "--llm-model", "j",
                                                   "--llm-base-url", server.base_url])
    assert bad.exit_code == 2 and "--llm-mode" in bad.output
    # every field of LLMJudgeOptions is a --llm-* flag, validated by the model (defined once)
    few = runner.invoke(generate_app, args + ["--llm-concurrency", "0"])
    assert few.exit_code == 2 and "--llm-concurrency" in few.output and "greater than or equal to 1" in few.output, few.output


def test_diagnose_names_its_queries_relative_to_the_data_root(tmp_path, monkeypatch):
    """--queries takes a data set name like every other path: under $SYNTHRANK_DATA / --data-root."""
    folder, queries = _handmade_set(tmp_path)
    root = tmp_path / "root"
    root.mkdir()
    queries.rename(root / "my-queries.tsv")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SYNTHRANK_DATA", str(root))  # what --data-root sets
    result = runner.invoke(generate_app, ["diagnose", "--export", str(folder), "--queries", "my-queries.tsv", "--judges", "bm25"])
    assert result.exit_code == 0, result.output
    assert json.loads((folder / "diagnose.json").read_text())["passages"] == 6
