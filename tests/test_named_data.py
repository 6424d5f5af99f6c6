"""Data sets by name, offline: a loopback HTTP server stands in for the BEIR host, ``datasets`` reads
a local folder laid out like a hub repository, ``ir_datasets`` a locally registered data set."""

from __future__ import annotations

import io
import json
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from typer.testing import CliRunner

from synthrank.cli import app
from synthrank.data import DataFormatError, load_beir_folder
from synthrank.data.named import resolve_dataset

CORPUS = [{"_id": "d1", "title": "Cats", "text": "cats eat fish"}, {"_id": "d2", "title": "", "text": "dogs bark loudly"},
          {"_id": "d3", "title": "Birds", "text": ""}]
QUERIES = [{"_id": "q1", "text": "what do cats eat"}, {"_id": "q2", "text": "which animal barks"}]
QRELS = "query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\n"


def beir_zip(top: str = "tiny", layout: bool = True) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        if layout:
            archive.writestr(f"{top}/corpus.jsonl", "".join(json.dumps(d) + "\n" for d in CORPUS))
            archive.writestr(f"{top}/queries.jsonl", "".join(json.dumps(q) + "\n" for q in QUERIES))
            archive.writestr(f"{top}/qrels/test.tsv", QRELS)
        else:
            archive.writestr(f"{top}/readme.txt", "not a BEIR folder")
    return buffer.getvalue()


class _Files(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}
    requests: list[tuple[str, str | None]] = []
    cut_after: dict[str, int] = {}  # path -> bytes to send before dropping the connection (first request only)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.requests.append((self.path, self.headers.get("Range")))
        body = self.files.get(self.path)
        if body is None:
            self.send_response(404)
            self.end_headers()
            return
        start = int(self.headers["Range"].split("=")[1].split("-")[0]) if self.headers.get("Range") else 0
        self.send_response(206 if start else 200)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        cut = self.cut_after.pop(self.path, None)
        self.wfile.write(body[start:cut] if cut is not None else body[start:])
        if cut is not None:
            self.close_connection = True

    def log_message(self, *args) -> None:
        pass


@pytest.fixture()
def server(monkeypatch, tmp_path: Path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    _Files.files, _Files.requests, _Files.cut_after = {}, [], {}
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    monkeypatch.setenv("SYNTHRANK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SYNTHRANK_BEIR_URL", f"http://127.0.0.1:{httpd.server_address[1]}/beir")
    yield httpd, f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_beir_name_is_downloaded_once_and_loads(server, tmp_path: Path) -> None:
    _, base = server
    _Files.files["/beir/tiny.zip"] = beir_zip()
    folder = resolve_dataset("beir:tiny", progress=False)
    assert folder == tmp_path / "cache" / "datasets" / "beir" / "tiny"
    dataset = load_beir_folder(folder, split="test")
    assert set(dataset.corpus) == {"d1", "d2", "d3"} and set(dataset.qrels) == {"q1", "q2"}
    assert json.loads((folder / "source.json").read_text())["url"] == f"{base}/beir/tiny.zip"
    assert resolve_dataset("beir:tiny", progress=False) == folder and len(_Files.requests) == 1  # cached


def test_an_interrupted_download_resumes_with_a_range_request(server, tmp_path: Path) -> None:
    _, base = server
    body = beir_zip()
    _Files.files["/beir/tiny.zip"] = body
    _Files.cut_after["/beir/tiny.zip"] = len(body) // 2
    with pytest.raises(DataFormatError):  # the connection drops half way: a truncated zip
        resolve_dataset("beir:tiny", progress=False)
    partial = tmp_path / "cache" / "datasets" / "beir" / "tiny.zip.partial"
    assert not (tmp_path / "cache" / "datasets" / "beir" / "tiny").exists()  # no half-written entry
    partial.write_bytes(body[: len(body) // 2])  # what an interrupted run leaves behind
    folder = resolve_dataset("beir:tiny", progress=False)
    assert _Files.requests[-1][1] == f"bytes={len(body) // 2}-" and (folder / "corpus.jsonl").is_file()


@pytest.mark.parametrize("name, setup, words", [
    ("beir:nothere", lambda: None, "HTTP 404"),
    ("beir:corrupt", lambda: _Files.files.__setitem__("/beir/corrupt.zip", b"PK\x03\x04 not really a zip"), "not a valid zip"),
    ("beir:layout", lambda: _Files.files.__setitem__("/beir/layout.zip", beir_zip(layout=False)), "not a BEIR-layout zip"),
    ("beir:../etc", lambda: None, "letters, digits"),
    ("zzz:scifact", lambda: None, "no such folder"),
])
def test_bad_names_give_one_line_errors_and_leave_no_cache_entry(server, tmp_path: Path, name, setup, words) -> None:
    setup()
    result = CliRunner().invoke(app, ["evaluate", "-m", "bm25", "-d", name, "-q"])
    assert result.exit_code == 2, result.output
    errors = [line for line in result.output.splitlines() if "error" in line.lower()]
    assert words in result.output and len(errors) == 1 and "Traceback" not in result.output, result.output
    cache = tmp_path / "cache" / "datasets" / "beir"
    assert not cache.exists() or not [p for p in cache.iterdir() if not p.name.endswith(".partial")]


def test_offline_is_a_clear_error(monkeypatch, tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("SYNTHRANK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("SYNTHRANK_BEIR_URL", f"http://127.0.0.1:{port}")
    with pytest.raises(DataFormatError, match="cannot download .*offline or unreachable"):
        resolve_dataset("beir:scifact", progress=False)


def test_data_get_prints_the_folder_last_then_evaluate_uses_the_name(server, tmp_path: Path, monkeypatch) -> None:
    _, base = server
    _Files.files["/beir/tiny.zip"] = beir_zip()
    _Files.files["/other/my-set.zip"] = beir_zip("my-set")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # an empty HOME: nothing but the cache we name
    got = CliRunner().invoke(app, ["data", "get", "tiny", "-q"])
    assert got.exit_code == 0, got.output
    assert got.output.strip().splitlines()[-1] == str(tmp_path / "cache" / "datasets" / "beir" / "tiny")
    by_url = CliRunner().invoke(app, ["data", "get", f"{base}/other/my-set.zip", "-q"])
    assert by_url.exit_code == 0 and (Path(by_url.output.strip().splitlines()[-1]) / "qrels" / "test.tsv").is_file()
    evaluated = CliRunner().invoke(app, ["evaluate", "-m", "bm25", "-d", "beir:tiny", "-q", "--json"])
    assert evaluated.exit_code == 0, evaluated.output
    assert json.loads(evaluated.output[evaluated.output.index("{"):])["metrics"]["ndcg@10"] == 1.0


def test_a_relative_name_is_found_under_the_data_root(tmp_path: Path, monkeypatch) -> None:
    from conftest import write_beir

    write_beir(tmp_path / "root" / "tiny", CORPUS, QUERIES, {"test": QRELS})
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SYNTHRANK_DATA", raising=False)
    missing = CliRunner().invoke(app, ["evaluate", "-m", "bm25", "-d", "tiny", "-q"])
    assert missing.exit_code == 2 and "no data root is set" in missing.output
    found = CliRunner().invoke(app, ["evaluate", "-m", "bm25", "-d", "tiny", "--data-root", str(tmp_path / "root"), "-q"])
    assert found.exit_code == 0, found.output


def test_hf_name_reads_a_hub_layout_folder_through_datasets(tmp_path: Path, monkeypatch) -> None:
    """An mteb-style repository: configs corpus, queries and default (the qrels), declared in its README."""
    monkeypatch.setenv("SYNTHRANK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    repo = tmp_path / "mteb-tiny"
    (repo / "qrels").mkdir(parents=True)
    (repo / "corpus.jsonl").write_text("".join(json.dumps(d) + "\n" for d in CORPUS))
    (repo / "queries.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUERIES))
    (repo / "qrels" / "test.jsonl").write_text('{"query-id": "q1", "corpus-id": "d1", "score": 1}\n'
                                               '{"query-id": "q2", "corpus-id": "d2", "score": 1}\n')
    (repo / "README.md").write_text("---\nconfigs:\n- config_name: corpus\n  data_files:\n  - split: corpus\n    path: corpus.jsonl\n"
                                    "- config_name: queries\n  data_files:\n  - split: queries\n    path: queries.jsonl\n"
                                    "- config_name: default\n  data_files:\n  - split: test\n    path: qrels/test.jsonl\n---\n")
    folder = resolve_dataset(f"hf:{repo}")
    dataset = load_beir_folder(folder, split="test")
    assert set(dataset.corpus) == {"d1", "d2", "d3"} and dataset.qrels == {"q1": {"d1": 1}, "q2": {"d2": 1}}
    with pytest.raises(DataFormatError, match="cannot load"):
        resolve_dataset(f"hf:{tmp_path / 'no-such-repo'}")


def test_irds_name_reads_a_registered_ir_datasets_set(tmp_path: Path, monkeypatch) -> None:
    ir_datasets = pytest.importorskip("ir_datasets")
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import TrecQrels, TsvDocs, TsvQueries
    from ir_datasets.util import LocalDownload

    monkeypatch.setenv("SYNTHRANK_CACHE", str(tmp_path / "cache"))
    (tmp_path / "docs.tsv").write_text("d1\tcats eat fish\nd2\tdogs bark loudly\n")
    (tmp_path / "queries.tsv").write_text("q1\twhat do cats eat\n")
    (tmp_path / "qrels.txt").write_text("q1 0 d1 1\n")
    name = f"synthrank-test-{tmp_path.name}/test"
    ir_datasets.registry.register(name, Dataset(TsvDocs(LocalDownload(tmp_path / "docs.tsv")),
                                                 TsvQueries(LocalDownload(tmp_path / "queries.tsv")),
                                                 TrecQrels(LocalDownload(tmp_path / "qrels.txt"), {1: "relevant"})))
    dataset = load_beir_folder(resolve_dataset(f"irds:{name}"), split="test")
    assert set(dataset.corpus) == {"d1", "d2"} and dataset.qrels == {"q1": {"d1": 1}}
    with pytest.raises(DataFormatError, match="unknown ir_datasets id"):
        resolve_dataset("irds:no/such/set")


def test_an_export_of_queries_under_the_data_root_names_them_relative_to_it(tmp_path: Path, monkeypatch) -> None:
    """queries.ref.json must not record this machine's path: another clone with another data root reads it."""
    from synthrank.data import Query
    from synthrank.data.query_refs import load_queries_ref
    from synthrank.generate.export import export_generation
    from synthrank.generate.store import Generation, Store

    root = tmp_path / "data"
    (root / "claims").mkdir(parents=True)
    (root / "claims" / "queries_train.jsonl").write_text('{"_id": "q1", "text": "hello"}\n')
    monkeypatch.setenv("SYNTHRANK_DATA", str(root))
    with Store(tmp_path / "s.sqlite") as st:
        key = st.register(Generation("m", "p", "per-level", "h", {}))
        st.put([{"gen_key": key, "query_id": "q1", "level": 3, "idx": 0, "status": "done", "prompt_hash": "h", "model": "m",
                 "sampling": "{}", "raw": "", "passage": "a passage of twenty words " * 4, "prompt_tokens": 1,
                 "completion_tokens": 1, "latency_s": 0.1, "attempts": 1, "error": None, "endpoint": None, "updated": 0.0}])
        export_generation(st, key, {"q1": Query(_id="q1", text="hello")}, tmp_path / "out", str(root / "claims"),
                          queries_split="train")
    ref = json.loads((tmp_path / "out" / "queries.ref.json").read_text())
    assert ref["source"] == "claims" and str(tmp_path) not in (tmp_path / "out" / "card.json").read_text()
    moved = tmp_path / "elsewhere"
    (root / "claims").rename(tmp_path / "claims-moved")
    (moved / "claims").parent.mkdir()
    (tmp_path / "claims-moved").rename(moved / "claims")
    monkeypatch.setenv("SYNTHRANK_DATA", str(moved))  # another machine's data root
    monkeypatch.chdir(tmp_path)
    assert load_queries_ref(tmp_path / "out" / "queries.ref.json")["q1"].text == "hello"
