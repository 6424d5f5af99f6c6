"""Hub pushes with the upload injected (a recorder in place of huggingface_hub.HfApi; no network), and
the cards' Hub YAML headers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parent / "train"))
sys.path.insert(0, str(Path(__file__).resolve().parent / "generate"))
from generate_fake_server import FakeOpenAI  # noqa: E402
from training_fixtures import write_tiny_static_model, write_tiny_synthetic_set  # noqa: E402

from synthrank.cli import app  # noqa: E402
from synthrank.data import DataFormatError  # noqa: E402
from synthrank.hub import push_folder, with_header  # noqa: E402


class RecordingApi:
    """Stands in for huggingface_hub.HfApi: records the calls, uploads nothing."""

    calls: list[tuple[str, dict]] = []

    def __init__(self, token=None, fail: Exception | None = None):
        self.token, self.fail = token, fail

    def create_repo(self, **kwargs):
        RecordingApi.calls.append(("create_repo", kwargs))

    def upload_folder(self, **kwargs):
        if self.fail is not None:
            raise self.fail
        files = sorted(str(p.relative_to(kwargs["folder_path"])) for p in Path(kwargs["folder_path"]).rglob("*") if p.is_file())
        RecordingApi.calls.append(("upload_folder", {**kwargs, "files": files}))


@pytest.fixture()
def recorder(monkeypatch):
    import huggingface_hub

    RecordingApi.calls = []
    monkeypatch.setattr(huggingface_hub, "HfApi", RecordingApi)
    return RecordingApi


def _front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text[4:].split("\n---\n", 1)[0])


def test_push_folder_creates_then_uploads_and_keeps_the_token_out_of_errors(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "README.md").write_text("# m\n")
    RecordingApi.calls = []
    url = push_folder(tmp_path / "m", "me/model", api=RecordingApi())
    assert url == "https://huggingface.co/me/model"
    assert [c[0] for c in RecordingApi.calls] == ["create_repo", "upload_folder"]
    assert RecordingApi.calls[0][1] == {"repo_id": "me/model", "repo_type": "model", "private": False, "exist_ok": True}
    with pytest.raises(DataFormatError, match="OWNER/NAME"):
        push_folder(tmp_path / "m", "no-owner", api=RecordingApi())
    monkeypatch.setenv("HF_TOKEN", "hf_secret123")
    with pytest.raises(DataFormatError) as err:
        push_folder(tmp_path / "m", "me/model", api=RecordingApi(fail=RuntimeError("401 for token hf_secret123")))
    assert "hf_secret123" not in str(err.value) and "***" in str(err.value)


def test_with_header_merges_an_existing_front_matter() -> None:
    text = with_header("---\ntags:\n- sentence-transformers\nbase_model: x\n---\n\n# Card\n", {"tags": ["synthrank"], "license": "mit"})
    head = yaml.safe_load(text[4:].split("\n---\n", 1)[0])
    assert head == {"tags": ["sentence-transformers", "synthrank"], "base_model": "x", "license": "mit"} and text.endswith("# Card\n")


def test_train_push_to_hub_uploads_the_model_with_its_card(tmp_path: Path, recorder) -> None:
    write_tiny_synthetic_set(tmp_path / "synthetic")
    write_tiny_static_model(tmp_path / "base")
    config = tmp_path / "t.yaml"
    config.write_text(yaml.safe_dump({"base_model": str(tmp_path / "base"), "output_dir": str(tmp_path / "out"),
                                      "sources": [{"name": "synthetic", "data": str(tmp_path / "synthetic")}],
                                      "context": {"group_size": 4}, "training": {"batch_size": 4, "max_steps": 1}}))
    result = CliRunner().invoke(app, ["train", str(config), "-q", "--push-to-hub", "me/tiny"])
    assert result.exit_code == 0, result.output
    assert "pushed: https://huggingface.co/me/tiny" in result.output
    upload = next(c for name, c in recorder.calls if name == "upload_folder")
    assert upload["repo_type"] == "model" and "model.safetensors" in upload["files"] and "README.md" in upload["files"]
    header = _front_matter(tmp_path / "out" / "model" / "README.md")
    assert "synthrank" in header["tags"] and header["synthrank"]["loss"] == "ws2" and header["license"]


def test_export_push_to_hub_uploads_the_set_with_a_hub_card(tmp_path: Path, recorder) -> None:
    queries = tmp_path / "q.jsonl"
    queries.write_text("".join(json.dumps({"_id": f"q{i}", "text": f"what about volcano number {i}"}) + "\n" for i in range(3)))
    with FakeOpenAI() as server:
        generated = CliRunner().invoke(app, ["generate", "--queries", str(queries), "--store", str(tmp_path / "s.sqlite"),
                                             "--backend", "openai", "--model", "fake", "--base-url", server.base_url,
                                             "--no-progress", "--prompt", "single-call"])
    assert generated.exit_code == 0, generated.output
    result = CliRunner().invoke(app, ["generate", "export", "--store", str(tmp_path / "s.sqlite"), "--queries", str(queries),
                                      "--out", str(tmp_path / "set"), "--push-to-hub", "me/set", "--private"])
    assert result.exit_code == 0, result.output
    create = next(c for name, c in recorder.calls if name == "create_repo")
    assert create == {"repo_id": "me/set", "repo_type": "dataset", "private": True, "exist_ok": True}
    header = _front_matter(tmp_path / "set" / "README.md")
    assert header["task_categories"] == ["text-retrieval"] and "synthrank" in header["tags"] and header["generator"]
