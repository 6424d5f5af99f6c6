"""Two generator processes on disjoint slices (``--offset``) of one query file share one SQLite
store: the way a campaign uses a second core or a second machine on a shared disk. Every item
must be stored once, and one export of the whole range afterwards must hold both slices."""

import sqlite3
import subprocess
import sys

from generate_fake_server import FakeOpenAI, write_test_prompt

from synthrank.generate.export import read_export

N_QUERIES = 24


def test_two_processes_on_one_store_lose_and_duplicate_nothing(tmp_path):
    (tmp_path / "q.tsv").write_text("".join(f"w{i}\tworker test question {i} about subject {i * 7}\n" for i in range(N_QUERIES)))
    prompt = write_test_prompt(tmp_path)
    store = tmp_path / "s.sqlite"
    with FakeOpenAI(delay_s=0.01) as server:
        def worker(offset, limit):
            return [sys.executable, "-m", "synthrank.cli", "generate", "--queries", str(tmp_path / "q.tsv"), "--store", str(store),
                    "--backend", "openai", "--model", "fake", "--base-url", server.base_url, "--concurrency", "4",
                    "--prompt", prompt, "--no-progress", "--offset", str(offset), "--limit", str(limit)]
        half = N_QUERIES // 2
        procs = [subprocess.Popen(worker(0, half), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE),
                 subprocess.Popen(worker(half, N_QUERIES - half), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)]
        errors = [p.communicate(timeout=180)[1].decode() for p in procs]
        assert [p.returncode for p in procs] == [0, 0], errors
        export = subprocess.run([sys.executable, "-m", "synthrank.cli", "generate", "export", "--store", str(store),
                                 "--queries", str(tmp_path / "q.tsv"), "--out", str(tmp_path / "set")],
                                capture_output=True, text=True, timeout=120)
        assert export.returncode == 0, export.stderr
    db = sqlite3.connect(store)
    rows = db.execute("SELECT query_id, level, idx, status FROM items").fetchall()
    db.close()
    keys = [(q, lv, i) for q, lv, i, _ in rows]
    assert len(keys) == len(set(keys)) == N_QUERIES * 4  # levels 3/2/1/0, one passage each
    assert {s for *_, s in rows} == {"done"}
    _, exported = read_export(tmp_path / "set")
    assert {r["query_id"] for r in exported} == {f"w{i}" for i in range(N_QUERIES)}
