"""List-wise losses for ranking contexts, one per file, registered by class name and alias.

``get_loss_class("ws2")`` -> :class:`WS2Loss`; ``available_losses()`` lists every name. The
tensor contract is in :mod:`synthrank.train.losses.base`. :class:`CachedListwiseLoss` (GradCache)
is imported lazily because it pulls in sentence-transformers.
"""

from __future__ import annotations

from typing import Any

from synthrank.train.losses.approx_ndcg import ApproxNDCGLoss
from synthrank.train.losses.base import ListwiseLoss, LossOptions, available_losses, get_loss_class
from synthrank.train.losses.batch import PAD_LABEL
from synthrank.train.losses.infonce import InfoNCELoss
from synthrank.train.losses.kl import KLDivergenceLoss
from synthrank.train.losses.ws2 import WS2Loss, ws2_distance

__all__ = [
    "PAD_LABEL",
    "ApproxNDCGLoss",
    "CachedListwiseLoss",
    "InfoNCELoss",
    "KLDivergenceLoss",
    "ListwiseLoss",
    "LossOptions",
    "WS2Loss",
    "available_losses",
    "get_loss_class",
    "ws2_distance",
]


def __getattr__(name: str) -> Any:
    if name == "CachedListwiseLoss":
        from synthrank.train.losses.cached import CachedListwiseLoss

        return CachedListwiseLoss
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
