"""Bad inputs found by the outside audit (issue 17): each gets a one-line error and loses nothing.

Every test here failed on the code before its fix: a silent wrong result, a traceback, or a
file left with the wrong permissions.
"""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import sys

from conftest import write_beir

sys.path.insert(0, str(Path(__file__).resolve().parent / "train"))
from training_fixtures import write_tiny_static_model  # noqa: E402
from synthrank.cli import app
from synthrank.data import DataFormatError, atomic_write, load_queries

CORPUS = [{"_id": "d1", "title": "t", "text": "alpha beta"}, {"_id": "d2", "title": "", "text": "gamma"}]
QUERIES = [{"_id": "q1", "text": "alpha"}]
QRELS = {"test": "query-id\tcorpus-id\tscore\nq1\td1\t1\n"}


def _one_line_error(result, *words) -> str:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    message = " ".join(result.output.split())
    assert message.startswith("error:"), message
    for word in words:
        assert word in message, (word, message)
    return message


def test_a_dangling_corpus_symlink_is_an_error_not_an_empty_corpus(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "d", CORPUS, QUERIES, QRELS)
    (folder / "corpus.jsonl").unlink()
    (folder / "corpus.jsonl").symlink_to(tmp_path / "gone.jsonl")
    _one_line_error(CliRunner().invoke(app, ["data", "validate", str(folder)]), "corpus.jsonl", "broken symbolic link")
    (folder / "corpus.jsonl").unlink()  # no corpus at all: a query-only folder, said as such
    result = CliRunner().invoke(app, ["data", "validate", str(folder)])
    assert result.exit_code == 0 and "no corpus.jsonl (a query-only folder)" in result.output


def test_a_tsv_header_line_is_not_a_query(tmp_path: Path) -> None:
    path = tmp_path / "q.tsv"
    path.write_text("id\ttext\nq1\thello there\n")
    assert list(load_queries(path)) == ["q1"]
    path.write_text("q0\tid\nq1\ttext\n")  # not a header: ordinary ids and texts
    assert list(load_queries(path)) == ["q0", "q1"]


def test_bm25_on_a_corpus_whose_titles_are_only_stop_words(tmp_path: Path) -> None:
    """The title field had no term at all and bm25s crashed ('max() arg is an empty sequence')."""
    folder = write_beir(tmp_path / "d", CORPUS, QUERIES, QRELS)
    result = CliRunner().invoke(app, ["evaluate", "-m", "bm25", "-d", str(folder), "-q", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output[result.output.index("{"):])["metrics"]["ndcg@10"] == 1.0


@pytest.mark.parametrize("args, words", [
    (["--metrics", "ndcg@0"], ["ndcg@0", "cutoff"]),  # pytrec_eval aborted the process
    (["--batch-size", "0"], ["--batch-size", "greater than or equal to 1"]),
    (["-l", "-3"], ["--relevance-level", "greater than or equal to 0"]),
    (["--similarity", "manhattan"], ["--similarity", "'cosine' or 'dot'"]),
])
def test_evaluate_refuses_bad_options_in_one_line(tmp_path: Path, args: list[str], words: list[str]) -> None:
    folder = write_beir(tmp_path / "d", CORPUS, QUERIES, QRELS)
    model = ["-m", "bm25"] if "--similarity" not in args and "--batch-size" not in args else []
    if model == []:
        model = ["-m", str(write_tiny_static_model(tmp_path / "m"))]
    _one_line_error(CliRunner().invoke(app, ["evaluate", *model, "-d", str(folder), "-q", *args]), *words)


def test_evaluate_out_path_that_is_a_file(tmp_path: Path) -> None:
    folder = write_beir(tmp_path / "d", CORPUS, QUERIES, QRELS)
    (tmp_path / "afile").write_text("x")
    _one_line_error(CliRunner().invoke(app, ["evaluate", "-m", "bm25", "-d", str(folder), "-o", str(tmp_path / "afile"), "-q"]),
                    "exists and is not a folder")
    assert (tmp_path / "afile").read_text() == "x"


def test_models_that_cannot_be_loaded_say_why_in_one_line(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    folder = write_beir(tmp_path / "d", CORPUS, QUERIES, QRELS)
    (tmp_path / "notamodel").mkdir()
    (tmp_path / "notamodel" / "config.json").write_text("{}")
    for model, words in (("no-such-org/no-such-model", ["cannot be reached (offline)"]),
                         (str(tmp_path / "notamodel"), ["not a loadable"])):
        _one_line_error(CliRunner().invoke(app, ["evaluate", "-m", model, "-d", str(folder), "-q"]), *words)


@pytest.mark.parametrize("kind", ["not_sqlite", "foreign_tables", "a_folder"])
def test_stores_that_are_not_ours_are_refused_and_left_unchanged(tmp_path: Path, kind: str) -> None:
    store = tmp_path / "store.sqlite"
    queries = tmp_path / "q.tsv"
    queries.write_text("q1\thello\n")
    if kind == "not_sqlite":
        store.write_bytes(b"not sqlite at all")
    elif kind == "foreign_tables":
        with sqlite3.connect(store) as db:
            db.execute("CREATE TABLE t (x)")
    else:
        store.mkdir()
    before = store.read_bytes() if store.is_file() else None
    for command in (["generate", "--queries", str(queries), "--store", str(store), "--backend", "openai", "--model", "m"],
                    ["generate", "status", "--store", str(store)]):
        if kind == "a_folder" and command[1] == "status":
            continue  # typer refuses a folder for status itself
        _one_line_error(CliRunner().invoke(app, command), str(store))
    if before is not None:
        assert store.read_bytes() == before  # no tables were added to another program's database


def test_export_refuses_queries_that_do_not_hold_the_stores_ids(tmp_path: Path) -> None:
    from synthrank.generate.export import export_generation
    from synthrank.generate.store import Generation, Store
    from synthrank.data import Query

    with Store(tmp_path / "s.sqlite") as st:
        key = st.register(Generation("m", "p", "per-level", "h", {}))
        st.put([{"gen_key": key, "query_id": "q1", "level": 3, "idx": 0, "status": "done", "prompt_hash": "h", "model": "m",
                 "sampling": "{}", "raw": "", "passage": "a passage of twenty words " * 4, "prompt_tokens": 1,
                 "completion_tokens": 1, "latency_s": 0.1, "attempts": 1, "error": None, "endpoint": None, "updated": 0.0}])
        with pytest.raises(ValueError, match="1 of the 1 queries in the store are not in other.tsv"):
            export_generation(st, key, {"z9": Query(_id="z9", text="other")}, tmp_path / "out", "other.tsv")
        # A kill during an export left a temporary file: the next export removes it.
        (tmp_path / "out2").mkdir()
        (tmp_path / "out2" / ".corpus.jsonl.abc123.tmp").write_text("half")
        export_generation(st, key, {"q1": Query(_id="q1", text="hello")}, tmp_path / "out2", "q.tsv")
        assert not list((tmp_path / "out2").glob(".*.tmp"))


def test_seed_from_without_generation_json_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "exp").mkdir()
    (tmp_path / "exp" / "generations.jsonl").write_text('{"query_id": "q1"}\n')
    queries = tmp_path / "q.tsv"
    queries.write_text("q1\thello\n")
    result = CliRunner().invoke(app, ["generate", "--queries", str(queries), "--store", str(tmp_path / "s.sqlite"),
                                      "--seed-from", str(tmp_path / "exp"), "--backend", "openai", "--model", "m"])
    _one_line_error(result, "generation.json", "file not found")


def test_a_queries_ref_may_not_point_at_any_file(tmp_path: Path) -> None:
    from synthrank.data.query_refs import load_queries_ref

    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0\n")
    ref = tmp_path / "queries.ref.json"
    ref.write_text(json.dumps({"source": str(secret), "ids": ["root"]}))
    with pytest.raises(DataFormatError, match="not a queries file") as err:
        load_queries_ref(ref)
    assert "root:x" not in str(err.value)


def test_atomic_writes_get_the_users_umask_not_0600(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "out.json") as handle:
            handle.write("{}")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "out.json").stat().st_mode) == 0o644


@pytest.mark.parametrize("damage", ["zero_bytes", "wrong_shape", "not_numpy"])
def test_an_unreadable_embedding_cache_entry_is_a_miss(tmp_path: Path, damage: str) -> None:
    from synthrank.evaluate.encode import EmbeddingCache

    cache = EmbeddingCache(tmp_path)
    ids = ["d1", "d2"]
    cache.save("k", ids, np.ones((2, 4), dtype=np.float32), {})
    vectors = tmp_path / "embeddings" / "k.npy"
    if damage == "zero_bytes":
        vectors.write_bytes(b"")
    elif damage == "wrong_shape":
        np.save(vectors, np.ones((2,), dtype=np.float32))
    else:
        vectors.write_bytes(b"\x93NUMPY garbage")
    assert cache.load("k", ids) is None


def test_train_set_value_that_is_not_yaml(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("output_dir: o\nsources: []\ncontext: {group_size: 4}\n")
    _one_line_error(CliRunner().invoke(app, ["train", str(config), "--set", "loss={"]), "not valid YAML", "loss={")


def test_config_errors_name_their_yaml_line_and_the_loss_is_checked_up_front(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    queries = tmp_path / "q.tsv"
    queries.write_text("q1\thello\n")
    config = tmp_path / "run.yaml"
    config.write_text(f"name: r\ngenerate:\n  queries: {queries}\n  backend: openai\n  model: m\n"
                      "train:\n  sources: [{name: s, data: '@generate'}]\n  context: {group_size: 4}\n  loss:\n    name: nosuch\n")
    message = _one_line_error(CliRunner().invoke(app, ["run", str(config)]), "run.yaml:10:", "train.loss.name", "unknown loss")
    assert "nosuch" in message and not (tmp_path / "runs").exists()  # nothing ran
    config.write_text(f"name: r\ngenerate:\n  queries: {queries}\n  backend: openai\n  model: m\n"
                      f"mine:\n  queries: {queries}\n  rank_range: '100:10'\n"
                      "train:\n  sources: [{name: s, data: '@generate'}]\n  context: {group_size: 4}\n")
    _one_line_error(CliRunner().invoke(app, ["run", str(config)]), "run.yaml:8:", "mine.rank_range", "100:10")
    assert not (tmp_path / "runs").exists()


def test_a_run_name_cannot_leave_the_runs_folder(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "escape.yaml"
    config.write_text("name: ../../x\ntrain: {sources: [{name: s, data: nowhere}], context: {group_size: 4}}\n")
    _one_line_error(CliRunner().invoke(app, ["run", str(config)]), "escape.yaml:1:", "name")
    assert not (tmp_path.parent.parent / "x").exists()


def test_an_unreadable_file_is_one_line_not_a_traceback(tmp_path: Path, monkeypatch) -> None:
    """Permission denied (simulated: the tests may run as root, who can read anything)."""
    import builtins

    folder = write_beir(tmp_path / "d", CORPUS, QUERIES, QRELS)
    real_open = builtins.open

    def deny(file, *args, **kwargs):
        if str(file).endswith("corpus.jsonl"):
            raise PermissionError(13, "Permission denied", str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    _one_line_error(CliRunner().invoke(app, ["data", "validate", str(folder)]), "corpus.jsonl", "cannot read: Permission denied")
