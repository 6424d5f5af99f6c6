"""Real `torchrun` (torch.distributed.run, gloo, 2 CPU processes) against a one-process run on the global batch.

This is the proof of the scaling story on a CPU-only machine: under torchrun the model is wrapped
in DDP, the two ranks train on disjoint halves of each global batch, and the loss curve and the
trained weights equal those of one process that sees the whole global batch.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from training_fixtures import write_tiny_static_model, write_tiny_synthetic_set


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _config(root: Path, name: str, batch_size: int) -> Path:
    cfg = {
        "base_model": str(root / "base"), "output_dir": str(root / name),
        "sources": [{"name": "synthetic", "data": str(root / "synthetic")}],
        "context": {"group_size": 4}, "loss": {"name": "ws2", "temperature": 1.0},
        "training": {"batch_size": batch_size, "epochs": 2, "learning_rate": 0.05, "warmup_ratio": 0.0,
                     "save_steps": 100, "logging_steps": 1, "log_batches": True},
    }
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(next(folder.rglob("*.safetensors"))))


def _losses(folder: Path) -> list[float]:
    return [row["loss"] for row in json.loads((folder / "log_history.json").read_text()) if "loss" in row]


def test_torchrun_two_processes_equal_one_process_on_the_global_batch(tmp_path: Path) -> None:
    write_tiny_synthetic_set(tmp_path / "synthetic")
    write_tiny_static_model(tmp_path / "base")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    one = subprocess.run([sys.executable, "-m", "synthrank.cli", "train", str(_config(tmp_path, "one", 4)), "-q"],
                         env=env, capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stdout + one.stderr
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
                          "--master_port", str(_free_port()), "-m", "synthrank.cli", "train",
                          str(_config(tmp_path, "two", 2)), "-q"], env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stdout + two.stderr
    print(two.stdout[-1500:])

    info = json.loads((tmp_path / "two" / "train_info.json").read_text())
    assert info["world_size"] == 2 and info["data_parallel"] == "DistributedDataParallel", info
    assert json.loads((tmp_path / "one" / "train_info.json").read_text())["world_size"] == 1
    assert "trained 8 steps" in two.stdout and "trained 8 steps" in one.stdout  # 16 queries / global batch 4 x 2 epochs

    # Each step: the two ranks' rows are disjoint and together are the one-process batch.
    read = lambda p: [json.loads(line) for line in p.read_text().splitlines()]  # noqa: E731
    single = read(tmp_path / "one" / "batches" / "rank-0.jsonl")[:8]
    rank0 = read(tmp_path / "two" / "batches" / "rank-0.jsonl")[:8]
    rank1 = read(tmp_path / "two" / "batches" / "rank-1.jsonl")[:8]
    assert len(rank0) == len(rank1) == len(single) == 8
    for step, (a, b, whole) in enumerate(zip(rank0, rank1, single)):
        assert len(a) == len(b) == 2 and not set(a) & set(b), (step, a, b)
        assert a + b == whole, (step, a, b, whole)

    # Same losses at every step, same trained weights (float tolerance).
    losses_one, losses_two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert len(losses_one) == len(losses_two) == 8
    assert losses_two == pytest.approx(losses_one, rel=1e-4, abs=1e-5)
    w1, w2 = _weights(tmp_path / "one" / "model"), _weights(tmp_path / "two" / "model")
    base = _weights(tmp_path / "base")
    for key in w1:
        assert (w1[key] - base[key]).abs().max() > 1e-3  # training moved the weights
        assert (w1[key] - w2[key]).abs().max() < 1e-5, key
