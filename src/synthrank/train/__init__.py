"""Training: list-wise losses (registry below) and, next to them, the ranking-context builders."""

from synthrank.train.losses import ListwiseLoss, available_losses, get_loss_class

__all__ = ["ListwiseLoss", "available_losses", "get_loss_class"]
