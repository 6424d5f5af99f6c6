"""`synthrank.distill`: a static (model2vec) base model distilled offline, loadable and trainable.

The fast tests distill a tiny random BERT (one layer, ~90-token WordPiece vocabulary) built in
tmp, so they exercise the real model2vec + sentence-transformers path in seconds; relevance there
is lexical (shared tokens). The slow test distills the offline MiniLM itself (~30-40 s) and checks
a semantic preference with no word in common.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch

from synthrank.distill import distill_static

WORDS = (
    "cats purr softly when happy many dogs bark loudly at night the stock market fell sharply today "
    "bonds rallied investors sold shares why do a an of and is are in on to how plants make food "
    "sunlight leaves energy photosynthesis converts chemical into recipe tomato soup with basil"
).split()
QUERY, RELEVANT, UNRELATED = "why do cats purr", "many cats purr softly when happy", "the stock market fell sharply today"


@pytest.fixture(autouse=True, scope="module")
def one_intra_op_thread():
    """Tiny tensors: one thread (two OpenMP threads stall on the shared 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def write_tiny_bert(folder: Path, hidden: int = 48) -> Path:
    """A random one-layer BERT with a small WordPiece tokenizer, saved as a transformers folder."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import WordPiece
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tokens = list(dict.fromkeys(specials + sorted(set(WORDS)) + list("abcdefghijklmnopqrstuvwxyz")))
    vocab = {token: i for i, token in enumerate(tokens)}
    tokenizer = Tokenizer(WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    tokenizer.decoder = decoders.WordPiece()
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32)
    BertModel(config).save_pretrained(str(folder))
    fast.save_pretrained(str(folder))
    return folder


def _no_network(*args, **kwargs):
    raise AssertionError(f"distillation tried to open a network connection: {args}")


@pytest.fixture(scope="module")
def distilled(tmp_path_factory) -> tuple[Path, Path]:
    """(tiny BERT folder, its static model distilled to 16 dims) - with the network forbidden."""
    root = tmp_path_factory.mktemp("distill")
    base = write_tiny_bert(root / "bert")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(socket.socket, "connect", _no_network)
        patch.setattr(socket, "create_connection", _no_network)
        out = distill_static(str(base), root / "static", pca_dims=16, device="cpu")
    return base, out


def _static_class():
    try:
        from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    except ImportError:
        from sentence_transformers.models import StaticEmbedding
    return StaticEmbedding


def test_distilled_folder_is_a_static_sentence_transformer(distilled) -> None:
    from sentence_transformers import SentenceTransformer

    from synthrank.evaluate.encoders import load_encoder

    _, out = distilled
    modules = json.loads((out / "modules.json").read_text())
    assert modules[0]["type"].endswith("StaticEmbedding") and modules[1]["type"].endswith("Normalize")
    model = SentenceTransformer(str(out), device="cpu")
    assert isinstance(model[0], _static_class())
    assert model.similarity_fn_name == "cosine"
    assert model.get_embedding_dimension() == 16
    vectors = model.encode([QUERY, RELEVANT, UNRELATED])
    assert vectors.shape == (3, 16)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    again = load_encoder(str(out), device="cpu").encode([QUERY, RELEVANT, UNRELATED])  # synthrank's loader
    assert np.allclose(vectors, again, atol=1e-6)


def test_relevant_text_scores_above_unrelated(distilled) -> None:
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(distilled[1]), device="cpu")
    query, relevant, unrelated = model.encode([QUERY, RELEVANT, UNRELATED])
    assert float(query @ relevant) > float(query @ unrelated) + 0.1


def test_embeddings_equal_model2vec_static_model(distilled) -> None:
    from model2vec.distill import distill
    from sentence_transformers import SentenceTransformer

    base, out = distilled
    reference = distill(str(base), pca_dims=16, device="cpu", quantize_to="float32")
    texts = [QUERY, RELEVANT, UNRELATED, "photosynthesis converts sunlight"]
    ours = SentenceTransformer(str(out), device="cpu").encode(texts)
    assert np.allclose(ours, reference.encode(texts), atol=1e-5)


def test_sentence_transformers_base_folder_and_no_pca(distilled, tmp_path: Path) -> None:
    """A sentence-transformers folder whose transformer sits in a subfolder; pca_dims=None keeps its width."""
    base, _ = distilled
    st_folder = tmp_path / "st"
    (st_folder / "0_Transformer").mkdir(parents=True)
    for file in base.iterdir():
        (st_folder / "0_Transformer" / file.name).write_bytes(file.read_bytes())
    (st_folder / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "0_Transformer", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))
    out = distill_static(str(st_folder), tmp_path / "static", pca_dims=None, device="cpu")
    from sentence_transformers import SentenceTransformer

    assert SentenceTransformer(str(out), device="cpu").get_embedding_dimension() == 48


def test_refuses_remote_base_and_existing_output(distilled, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not a local folder"):
        distill_static("some-org/not-a-local-model", tmp_path / "x")
    assert not (tmp_path / "x").exists()
    base, out = distilled
    with pytest.raises(FileExistsError):
        distill_static(str(base), out, pca_dims=16)
    with pytest.raises(ValueError, match="pca_dims"):
        distill_static(str(base), tmp_path / "y", pca_dims=0)


def test_overwrite_replaces_the_model(distilled, tmp_path: Path) -> None:
    from sentence_transformers import SentenceTransformer

    base, _ = distilled
    out = distill_static(str(base), tmp_path / "m", pca_dims=16, device="cpu")
    distill_static(str(base), out, pca_dims=8, device="cpu", overwrite=True)
    assert SentenceTransformer(str(out), device="cpu").get_embedding_dimension() == 8


def test_command_writes_the_folder(distilled, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from synthrank.cli import app

    runner = CliRunner()
    assert "synthrank distill -o" in runner.invoke(app, ["distill", "--help"]).output
    result = runner.invoke(app, ["distill", "--base", str(distilled[0]), "-o", str(tmp_path / "c"), "--pca-dims", "8"])
    assert result.exit_code == 0, result.output
    assert "StaticEmbedding with" in result.output and "x 8 dims" in result.output
    again = runner.invoke(app, ["distill", "--base", str(distilled[0]), "-o", str(tmp_path / "c")])
    assert again.exit_code == 2 and "not empty" in again.output


def test_training_updates_the_embedding_matrix(distilled, tmp_path: Path) -> None:
    """Two steps of `synthrank train` (ws2) on a tiny graded set change the token rows it saw."""
    from safetensors.torch import load_file

    from synthrank.train.config import TrainConfig
    from synthrank.train.trainer import train

    data = tmp_path / "set"
    (data / "qrels").mkdir(parents=True)
    topics = [("cats", "purr softly"), ("dogs", "bark loudly"), ("plants", "make food"), ("bonds", "rallied")]
    corpus, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for i, (topic, fact) in enumerate(topics):
        queries.append({"_id": f"q{i}", "text": f"why do {topic} {fact}"})
        for level, text in {3: f"{topic} {fact} when happy", 2: f"many {topic} {fact}", 1: f"{topic} are many",
                            0: f"the {topics[(i + 1) % 4][0]} of today"}.items():
            corpus.append({"_id": f"d{i}-{level}", "text": text})
            qrels.append(f"q{i}\td{i}-{level}\t{level}")
    (data / "corpus.jsonl").write_text("".join(json.dumps(r) + "\n" for r in corpus))
    (data / "queries.jsonl").write_text("".join(json.dumps(r) + "\n" for r in queries))
    (data / "qrels" / "train.tsv").write_text("\n".join(qrels) + "\n")

    base = distilled[1]
    config = TrainConfig(
        base_model=str(base), output_dir=tmp_path / "run", sources=[{"name": "s", "data": str(data)}],
        context={"group_size": 4}, loss={"name": "ws2", "temperature": 0.05, "similarity": "cosine"},
        training={"batch_size": 2, "max_steps": 2, "learning_rate": 0.05, "warmup_ratio": 0.0, "logging_steps": 1},
    )
    result = train(config, resume=False, progress=False)
    assert result.steps == 2
    before = load_file(str(base / "model.safetensors"))["embedding.weight"]
    after = load_file(str(result.model_dir / "model.safetensors"))["embedding.weight"]
    assert before.shape == after.shape == (before.shape[0], 16)
    changed = (before - after).abs().sum(dim=1) > 0
    assert 0 < int(changed.sum()) < before.shape[0]  # the rows of tokens in the batches, not the others


@pytest.mark.slow
def test_minilm_distillation_prefers_the_semantic_match(tmp_path: Path) -> None:
    """The real offline MiniLM (~30-40 s): a paraphrase with no shared word beats an unrelated text."""
    from sentence_transformers import SentenceTransformer

    out = distill_static("all-MiniLM-L6-v2", tmp_path / "minilm-static", pca_dims=64)
    model = SentenceTransformer(str(out), device="cpu")
    assert isinstance(model[0], _static_class()) and model.get_embedding_dimension() == 64
    query, relevant, unrelated = model.encode(
        ["How do plants make food?", "Photosynthesis turns sunlight into sugar in green leaves.", "Stock prices dropped on Monday."])
    assert float(query @ relevant) > float(query @ unrelated) + 0.05
