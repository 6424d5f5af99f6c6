"""SIGKILL a real generator subprocess at random points, resume, and prove nothing is lost or duplicated."""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

from generate_fake_server import FakeOpenAI, write_test_prompt

N_QUERIES = 40
LEVELS = (3, 2, 1, 0)


def _command(tmp_path, server):
    return [sys.executable, "-m", "synthrank.cli", "generate", "--queries", str(tmp_path / "q.tsv"), "--store", str(tmp_path / "s.sqlite"),
            "--backend", "openai", "--model", "fake", "--base-url", server.base_url, "--concurrency", "4",
            "--timeout", "0.5", "--max-retries", "10", "--max-invalid-retries", "4", "--prompt", write_test_prompt(tmp_path), "--no-progress",
            "--export", str(tmp_path / "set"), "--export-every", "0.2"]


def _rows(path):
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT query_id, level, idx, status, passage FROM items").fetchall()
    finally:
        db.close()


def _wait_until_generating(proc, store, rows_before, timeout_s=60.0):
    """Until this process has stored a row beyond ``rows_before`` (or exited): start-up takes 1-10 s
    depending on the machine's load, so a fixed delay would often kill it before it did anything."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if store.exists() and len(_rows(store)) > rows_before:
                return
        except sqlite3.Error:
            pass
        time.sleep(0.05)


def test_sigkill_at_random_points_then_resume(tmp_path):
    (tmp_path / "q.tsv").write_text("".join(f"k{i}\tkill test question {i} about subject {i * 3}\n" for i in range(N_QUERIES)))
    rng = random.Random(int(time.time()))
    kills, progress = 0, []
    with FakeOpenAI(fault_rate=0.3, seed=7, hang_s=0.7, delay_s=0.03) as server:
        command = _command(tmp_path, server)
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        while kills < 6:
            proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _wait_until_generating(proc, tmp_path / "s.sqlite", progress[-1] if progress else 0)
            time.sleep(rng.uniform(0.0, 1.0))  # then kill at a random point of the work
            if proc.poll() is not None:  # finished before we could kill it: nothing left to test
                break
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            assert proc.returncode == -signal.SIGKILL
            kills += 1
            progress.append(len(_rows(tmp_path / "s.sqlite")) if (tmp_path / "s.sqlite").exists() else 0)
        exported = (tmp_path / "set" / "generations.jsonl").read_text().splitlines()
        # The periodic export survived the kills. It may hold a few more rows than the store had
        # after the last kill: an export taken while a batch of rows was being written can include
        # that batch, and the kill can land before its commit. Such rows are regenerated on resume.
        assert len(exported) > 0
        final = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert final.returncode == 0, final.stderr
    rows = _rows(tmp_path / "s.sqlite")
    keys = [(q, lv, i) for q, lv, i, _, _ in rows]
    expected = {(f"k{i}", lv, 0) for i in range(N_QUERIES) for lv in LEVELS}
    text = {f"k{i}": f"kill test question {i} about subject {i * 3}" for i in range(N_QUERIES)}
    print(f"\nkill/resume: {kills} SIGKILLs, rows stored after each kill {progress}, periodic export had {len(exported)}, final rows {len(rows)} "
          f"(expected {len(expected)}, distinct {len(set(keys))}); server calls {server.calls}, faults {server.fault_share:.0%}; "
          f"final run: {' | '.join(final.stderr.strip().splitlines()[-2:])}")
    assert kills >= 5
    exported_keys = {(r["query_id"], r["level"], r["idx"]) for r in map(json.loads, exported)}
    assert exported_keys <= expected
    assert len(keys) == len(set(keys)) == len(expected) and set(keys) == expected  # none lost, none duplicated
    assert all(status == "done" and text[q] in passage for q, _, _, status, passage in rows)
    db = sqlite3.connect(tmp_path / "s.sqlite")
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    summary = json.loads(subprocess.run([sys.executable, "-m", "synthrank.cli", "generate", "status", "--store", str(tmp_path / "s.sqlite"),
                                         "--json"], capture_output=True, text=True, check=True).stdout)
    assert summary[0]["done"] == len(expected) and summary[0]["failed"] == 0
