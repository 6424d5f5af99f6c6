"""Gather batch rows from every process, with gradients, so each rank sees the global batch.

Why every rank computes the loss over the GLOBAL batch: ws2 is a batch-level statistic (a
Gaussian fitted over all rows), so it cannot be split into per-rank parts. Each rank therefore
gathers all queries, passages and labels and computes the same loss L. In the backward pass
:func:`gather_rows` sums the gradients that all ranks computed for a rank's rows, so every rank
gets ``W * dL/d(its rows)``; DDP then *averages* parameter gradients over the W ranks, which
gives exactly ``dL/d(theta)``, the single-process gradient on the global batch. No extra loss
scaling is needed (unlike Trove/Tevatron, whose gather keeps only the local gradient and so
multiply the loss by W).

Ranks may hold different numbers of rows (e.g. the last batch of an epoch): rows are padded to
the largest rank for the collective and the padding is cut away again.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def _row_counts(tensor: Tensor) -> list[int]:
    """Number of rows on each rank, in rank order (one small all_gather)."""
    mine = torch.tensor([tensor.shape[0]], device=tensor.device, dtype=torch.long)
    counts = [torch.zeros_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, mine)
    return [int(c.item()) for c in counts]


def _all_gather_rows(tensor: Tensor, counts: list[int]) -> Tensor:
    """Plain (non-differentiable) all_gather of rows, padded to the longest rank and unpadded."""
    longest = max(counts)
    padded = F.pad(tensor.contiguous(), (0, 0) * (tensor.ndim - 1) + (0, longest - tensor.shape[0]))
    parts = [torch.empty_like(padded) for _ in counts]
    dist.all_gather(parts, padded)
    return torch.cat([part[:n] for part, n in zip(parts, counts)])


class _GatherRows(torch.autograd.Function):
    """all_gather along dim 0 whose backward sums every rank's gradient for the local rows."""

    @staticmethod
    def forward(ctx, tensor: Tensor, counts: list[int]) -> Tensor:  # type: ignore[override]
        rank = dist.get_rank()
        ctx.start, ctx.stop = sum(counts[:rank]), sum(counts[: rank + 1])
        return _all_gather_rows(tensor, counts)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.start : ctx.stop], None


def gather_rows(tensor: Tensor) -> Tensor:
    """``[n_rank, ...]`` on each rank -> ``[sum(n_rank), ...]`` in rank order, on every rank.

    Differentiable (see the module docstring for the gradient convention); tensors that do not
    require grad are gathered the same way. Outside a multi-process group, returns ``tensor``.
    """
    if not is_distributed():
        return tensor
    counts = _row_counts(tensor)
    if tensor.requires_grad:
        return _GatherRows.apply(tensor, counts)
    return _all_gather_rows(tensor, counts)
