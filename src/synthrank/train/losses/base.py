"""``ListwiseLoss``: the base of every list-wise loss, its registry, and the sentence-transformers glue.

Tensor contract (stated once; details and padding rules in :mod:`synthrank.train.losses.batch`):

- ``scores: [B, B*G]`` - every query of the batch against every passage of the batch (in-batch
  negatives); row ``i``'s own passages are columns ``i*G .. i*G+G-1``.
- ``labels: [B, G]`` - graded levels (float) of each query's own passages, expanded to ``[B, B*G]``
  block-diagonally with label 0 for other queries' passages (as the reference does). Label < 0
  marks a padded slot; its column is removed for every row, so it changes no query's loss.

A subclass implements :meth:`ListwiseLoss.compute` (pure math on those two tensors, testable
without a model), declares its options (``options_model``, when it has more than temperature and
similarity) and is registered under its class name and its ``_alias`` when defined::

    class MyLoss(ListwiseLoss):
        _alias = "mine"
        def compute(self, scores, labels): ...

    get_loss_class("mine") is get_loss_class("MyLoss") is MyLoss

As a sentence-transformers loss, :meth:`ListwiseLoss.forward` takes ``sentence_features`` (column
0 the queries, columns 1..G the passages ``passage_0 .. passage_{G-1}``) and ``labels: [B, G]``
(the dataset's ``label`` column, a list of G levels per row), embeds the texts, gathers queries,
passages and labels across processes, scores and calls ``compute``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, ClassVar, Literal

import torch
import torch.nn.functional as F
from pydantic import BaseModel, ConfigDict, Field
from torch import Tensor, nn

from synthrank.train.losses.batch import RankingBatch, prepare_ranking_batch
from synthrank.train.losses.distributed import gather_rows

Similarity = Literal["dot", "cosine"]


class LossOptions(BaseModel):
    """The options every loss takes (its constructor's keywords besides ``model``). A loss with more
    options declares a subclass as its ``options_model``; its defaults are the loss's own."""

    model_config = ConfigDict(extra="forbid")

    temperature: float = Field(1.0, gt=0, description="Scores are divided by it before the softmax.")
    similarity: Similarity = Field("dot", description="dot (the reference) or cosine.")


class ListwiseLoss(nn.Module):
    """Base class: registry by name/alias, the tensor contract, and the sentence-transformers forward.

    Args:
        model: the ``SentenceTransformer`` (or any module mapping a features dict to a dict with
            ``"sentence_embedding": [n, D]``); may be ``None`` when only :meth:`compute` is used.
        temperature: scores are divided by it before the softmax (reference default 1.0).
        similarity: ``"dot"`` (default; the reference: dot product, no normalisation) or
            ``"cosine"``. The model's ``similarity_fn_name`` is deliberately not used as the
            default: sentence-transformers reports ``"cosine"`` for models that never set it,
            which would silently change the method (and, at temperature 1, flatten the softmax).
        gather_across_devices: under ``torch.distributed``, gather every rank's queries, passages
            and labels so each rank computes the loss over the global batch (needed for ws2,
            whose value is a statistic of the whole batch). Gradients then equal the
            single-process run on the global batch, with DDP's usual gradient averaging.
    """

    _alias: ClassVar[str | None] = None
    _registry: ClassVar[dict[str, type[ListwiseLoss]]] = {}
    #: whether ``labels`` is required (InfoNCE can run on binary data without a label column).
    requires_labels: ClassVar[bool] = True
    #: the loss's options as YAML gives them (``loss: {name: approx_ndcg, gain: exponential}``)
    options_model: ClassVar[type[LossOptions]] = LossOptions

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for name in (cls.__name__, cls.__dict__.get("_alias")):
            if name is None:
                continue
            known = ListwiseLoss._registry.get(name)
            # Re-registering the same class (module reload) is fine; a different class is a clash.
            if known is not None and (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
                raise ValueError(f"loss name {name!r} is already registered by {known.__module__}.{known.__qualname__}")
            ListwiseLoss._registry[name] = cls

    def __init__(
        self,
        model: nn.Module | None = None,
        temperature: float = 1.0,
        similarity: Similarity = "dot",
        gather_across_devices: bool = True,
    ) -> None:
        super().__init__()
        if not temperature > 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if similarity not in ("dot", "cosine"):
            raise ValueError(f"similarity must be 'dot' or 'cosine', got {similarity!r}")
        self.model = model
        self.temperature = float(temperature)
        self.similarity = similarity
        self.gather_across_devices = gather_across_devices

    # -- the math ---------------------------------------------------------------------------
    def compute(self, scores: Tensor, labels: Tensor | None) -> Tensor:
        """Scalar loss from ``scores: [B, B*G]`` and ``labels: [B, G]`` (see the module docstring)."""
        raise NotImplementedError

    def prepare(self, scores: Tensor, labels: Tensor | None) -> RankingBatch:
        """Validated batch with padded columns dropped; ValueError if labels are required but None."""
        if labels is None and self.requires_labels:
            raise ValueError(f"{type(self).__name__} needs graded labels: a 'label' column with G levels per row")
        return prepare_ranking_batch(scores, labels)

    # -- sentence-transformers ----------------------------------------------------------------
    def forward(self, sentence_features: Iterable[dict[str, Tensor]], labels: Tensor | None) -> Tensor:
        """Embed ``[queries, passage_0, ..., passage_{G-1}]`` and return the scalar loss."""
        if self.model is None:
            raise ValueError(f"{type(self).__name__} was built without a model; use .compute(scores, labels)")
        return self.compute_loss_from_embeddings(embed_columns(self.model, list(sentence_features)), labels)

    def compute_loss_from_embeddings(self, embeddings: list[Tensor], labels: Tensor | None) -> Tensor:
        """``embeddings = [queries [B, D], passages_0 [B, D], ..., passages_{G-1} [B, D]]`` -> loss.

        Passages are interleaved so row i's own passages are columns ``i*G .. i*G+G-1``; with
        ``gather_across_devices`` the rows of all ranks are concatenated in rank order first.
        """
        if len(embeddings) < 2:
            raise ValueError(f"expected a query column and >= 1 passage column, got {len(embeddings)} column(s)")
        queries = embeddings[0]
        passages = torch.stack(embeddings[1:], dim=1)  # [B, G, D]
        if self.gather_across_devices:
            queries, passages = gather_rows(queries), gather_rows(passages)
            labels = None if labels is None else gather_rows(labels.to(queries.device))
        return self.compute(self.similarity_scores(queries, passages.flatten(0, 1)), labels)

    def similarity_scores(self, queries: Tensor, passages: Tensor) -> Tensor:
        """``queries: [B, D]``, ``passages: [N, D]`` -> ``[B, N]`` dot products (or cosines)."""
        if self.similarity == "cosine":
            queries, passages = F.normalize(queries, dim=-1), F.normalize(passages, dim=-1)
        return queries @ passages.T

    def get_config_dict(self) -> dict[str, Any]:
        """Settings recorded in the saved model card."""
        return {
            "temperature": self.temperature,
            "similarity": self.similarity,
            "gather_across_devices": self.gather_across_devices,
        }

    @property
    def citation(self) -> str:
        """BibTeX of SyCL, the method these list-wise losses serve (subclasses may override)."""
        return SYCL_CITATION


def embed_columns(model: nn.Module, features: list[dict[str, Tensor]]) -> list[Tensor]:
    """One ``[B, D]`` embedding per input column.

    With sentence-transformers already imported (a real ``SentenceTransformer`` model), its
    ``embed_columns`` merges the passage columns into one forward pass (same result, faster);
    otherwise (plain modules in tests) each column gets its own forward.
    """
    if "sentence_transformers" in sys.modules:
        try:
            from sentence_transformers.base.losses.merged_forward import embed_columns as st_embed_columns
        except ImportError:  # older sentence-transformers: no merged forward
            pass
        else:
            return st_embed_columns(model, features)
    return [model(feature)["sentence_embedding"] for feature in features]


def get_loss_class(name: str) -> type[ListwiseLoss]:
    """The loss class registered under ``name`` (class name or alias); ValueError lists the options."""
    try:
        return ListwiseLoss._registry[name]
    except KeyError:
        raise ValueError(f"unknown loss {name!r}; available: {sorted(ListwiseLoss._registry)}") from None


def available_losses() -> dict[str, str]:
    """``{name: class name}`` for every registered name (class names and aliases)."""
    return {name: cls.__name__ for name, cls in sorted(ListwiseLoss._registry.items())}


SYCL_CITATION = """
@inproceedings{esfandiarpoor2025beyond,
    title={Beyond Contrastive Learning: Synthetic Data Enables List-wise Training with Multiple Levels of Relevance},
    author={Reza Esfandiarpoor and George Zerveas and Ruochen Zhang and Macton Mgonzo and Carsten Eickhoff and Stephen H. Bach},
    booktitle={Findings of the Association for Computational Linguistics: EMNLP 2025},
    year={2025},
    eprint={2503.23239},
    archivePrefix={arXiv},
    url={https://arxiv.org/abs/2503.23239},
}
"""
