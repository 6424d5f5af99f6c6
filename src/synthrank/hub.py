"""Pushing trained models and synthetic data sets to the Hugging Face Hub, and the cards' Hub headers.

:func:`push_folder` creates the repository if needed and uploads a folder in one commit through
``huggingface_hub`` (``HfApi.create_repo`` + ``HfApi.upload_folder``). The token is read from an
environment variable (``HF_TOKEN`` by default; never printed, never stored); ``api`` may be any
object with those two methods (the tests inject a recorder, so no test touches the network).

:func:`card_header` renders the YAML front matter the Hub reads (license, tags, base model, data
sources, task): a dataset card and a model card start with it.
"""

from __future__ import annotations

import os
from pathlib import Path

import yaml

from synthrank.data.errors import DataFormatError


def card_header(fields: dict) -> str:
    """``---\\n<yaml>---\\n`` for a card; empty values are left out."""
    kept = {k: v for k, v in fields.items() if v not in (None, [], {}, "")}
    return "---\n" + yaml.safe_dump(kept, sort_keys=False, allow_unicode=True) + "---\n"


def with_header(markdown: str, fields: dict) -> str:
    """``markdown`` with its YAML front matter replaced by (or, when it has none, preceded by) ``fields``,
    merged over the front matter it had (lists are united)."""
    existing: dict = {}
    body = markdown
    if markdown.startswith("---\n") and "\n---\n" in markdown[4:]:
        head, body = markdown[4:].split("\n---\n", 1)
        existing = yaml.safe_load(head) or {}
    merged = dict(existing)
    for key, value in fields.items():
        if isinstance(value, list) and isinstance(existing.get(key), list):
            merged[key] = list(dict.fromkeys([*existing[key], *value]))
        elif value not in (None, [], {}, ""):
            merged[key] = value
    return card_header(merged) + body.lstrip("\n")


def push_folder(folder: Path, repo_id: str, repo_type: str = "model", token_env: str = "HF_TOKEN", private: bool = False,
                commit_message: str | None = None, api=None) -> str:
    """Upload ``folder`` to ``repo_id`` (created if missing); returns the repository URL.

    Raises DataFormatError (one line) for a bad repository id, a missing folder, or a failed upload."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataFormatError(folder, 0, "-", "no such folder to push")
    if repo_id.count("/") != 1 or not all(part.strip() for part in repo_id.split("/")):
        raise DataFormatError(repo_id, 0, "repo", "a Hub repository id is OWNER/NAME")
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=os.environ.get(token_env) or None)
    message = commit_message or f"synthrank: upload {folder.name}"
    try:
        api.create_repo(repo_id=repo_id, repo_type=repo_type, private=private, exist_ok=True)
        api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type=repo_type, commit_message=message)
    except Exception as err:  # noqa: BLE001 - network, auth, quota: one line, the token never in it
        text = str(err).splitlines()[0][:200] if str(err) else ""
        token = os.environ.get(token_env)
        if token:
            text = text.replace(token, "***")
        raise DataFormatError(repo_id, 0, "push", f"upload failed ({type(err).__name__}: {text})") from None
    prefix = {"model": "", "dataset": "datasets/", "space": "spaces/"}[repo_type]
    return f"https://huggingface.co/{prefix}{repo_id}"
