"""The ranking-batch tensor contract shared by every list-wise loss, stated once.

Shapes (B queries in the batch, G passages per query, N = B*G):

- ``scores: [B, N]`` - every query of the batch against every passage of the batch (in-batch
  negatives). Passage columns are grouped by query: row ``i``'s own passages are columns
  ``i*G .. i*G+G-1``; every other column is another query's passage.
- ``labels: [B, G]`` - graded relevance of each query's own passages (floats; SyCL uses levels
  0-3, binary contexts 1/0). A label ``< 0`` (``PAD_LABEL = -1``) marks a *padded slot*: a query
  with fewer than G real candidates.

:func:`expand_labels` turns ``labels`` into ``[B, N]`` block-diagonally: another query's passage
gets label **0**, exactly as the reference (Trove's ``torch.block_diag`` over the label rows) does.
Note what this means for targets built with ``softmax(labels)``: ``exp(0) = 1``, so every in-batch
negative receives as much target weight as an own level-0 passage.

Padded slots are removed from the candidate set of *every* row (the whole column is dropped)
before any loss sees the scores, so a padded slot has no effect on any query's loss - it is as if
the column had never been in the batch - and gets a zero gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

PAD_LABEL = -1.0


def expand_labels(labels: Tensor) -> Tensor:
    """``labels: [B, G]`` -> ``[B, B*G]`` block-diagonal, 0 for other queries' passages.

    The same as ``torch.block_diag(*labels.chunk(B))``, the reference's expansion.
    """
    batch, group = labels.shape
    eye = torch.eye(batch, dtype=labels.dtype, device=labels.device)
    return (eye[:, :, None] * labels[None, :, :]).reshape(batch, batch * group)


@dataclass(frozen=True)
class RankingBatch:
    """A validated ranking batch with padded columns removed (M = number of real passages).

    Attributes:
        scores: ``[B, M]`` raw similarities of every query to every real passage of the batch.
        targets: ``[B, M]`` expanded graded labels (own passages: their level, others: 0).
        own_index: ``[B, G]`` long, column in ``scores`` of row i's j-th own passage (0 where padded).
        own_valid: ``[B, G]`` bool, False at padded slots.
        own_labels: ``[B, G]`` the input labels as floats (padded slots keep their negative label).
    """

    scores: Tensor
    targets: Tensor
    own_index: Tensor
    own_valid: Tensor
    own_labels: Tensor

    @property
    def positive(self) -> Tensor:
        """``[B]`` long: column of each row's first own passage (the positive for InfoNCE)."""
        return self.own_index[:, 0]


def prepare_ranking_batch(scores: Tensor, labels: Tensor | None) -> RankingBatch:
    """Validate ``scores: [B, B*G]`` and ``labels: [B, G]``, expand the labels, drop padded columns.

    ``labels=None`` means "no graded labels" (binary data without a label column): every slot is
    real and labelled 1 for the first passage, 0 for the rest. Raises ``ValueError`` on shape
    mismatches or when a query's first slot is padded (every query needs >= 1 real passage, first).
    """
    if scores.ndim != 2:
        raise ValueError(f"scores must be [B, B*G], got shape {tuple(scores.shape)}")
    batch = scores.shape[0]
    if batch == 0:
        raise ValueError("empty batch: scores has 0 rows")
    if labels is None:
        if scores.shape[1] % batch:
            raise ValueError(f"scores {tuple(scores.shape)}: the column count is not a multiple of B={batch}")
        labels = torch.zeros(batch, scores.shape[1] // batch, device=scores.device)
        labels[:, 0] = 1.0
    if labels.ndim != 2 or labels.shape[0] != batch or scores.shape[1] != batch * labels.shape[1]:
        raise ValueError(
            f"expected scores [B, B*G] and labels [B, G]; got scores {tuple(scores.shape)}, "
            f"labels {tuple(labels.shape)}"
        )
    labels = labels.to(scores.device)
    if not labels.is_floating_point():
        labels = labels.float()
    own_valid = labels >= 0
    if not bool(own_valid[:, 0].all()):
        raise ValueError("every query needs a real first passage (label >= 0); padding (label < 0) goes last")
    group = labels.shape[1]
    targets = expand_labels(labels.clamp_min(0))
    keep = own_valid.reshape(-1)  # [N]: column j belongs to query j // G, slot j % G
    # Position of each original column among the kept ones (garbage at dropped columns).
    new_position = torch.cumsum(keep.long(), 0) - 1
    own_columns = torch.arange(batch * group, device=scores.device).reshape(batch, group)
    own_index = torch.where(own_valid, new_position[own_columns], torch.zeros_like(own_columns))
    if bool(keep.all()):
        return RankingBatch(scores, targets, own_index, own_valid, labels)
    return RankingBatch(scores[:, keep], targets[:, keep], own_index, own_valid, labels)
