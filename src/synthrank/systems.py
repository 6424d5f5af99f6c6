"""The system roles of a run's evaluation, named once.

- ``trained``: the model the run's train stage wrote;
- ``base``: the model it started from (the train section's ``base_model``, or ``evaluate.base_model``);
- ``bm25``: lexical BM25 (also the model name ``synthrank evaluate -m bm25`` takes).

Anything else in ``evaluate.systems`` is a model folder or hub id, evaluated under a folder-safe
label (:func:`system_label`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

TRAINED = "trained"
BASE = "base"
BM25 = "bm25"
ROLES = (TRAINED, BASE, BM25)
#: the baselines a run's comparison tables are computed against, in report order
COMPARED_AGAINST = (BASE, BM25)


def system_label(system: str) -> str:
    """A folder-safe, unique name for an evaluated system: a role as it is; a model path or hub id as
    its last part plus a short hash (an absolute path joined to the stage folder would otherwise *be*
    that path, and results would land in the model's own folder)."""
    if system in ROLES:
        return system
    tail = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(system.rstrip("/")).name or system).strip("._") or "model"
    return f"{tail}-{hashlib.sha256(system.encode()).hexdigest()[:8]}"
