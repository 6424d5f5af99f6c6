"""The one test collection shipped inside the package, so the main job runs with nothing else.

MEDLINE (the classic Cranfield-style collection of 1,033 medical abstracts, 30 queries, 696
judged pairs), in BEIR layout, as distributed with the classic SMART test collections (public
research data; our copy was converted from that distribution for ``../shared/data/medline``).
See ``embedded/README.md`` for provenance.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

EMBEDDED_DATASETS = ("medline",)


def embedded_dataset_path(name: str = "medline") -> Path:
    """Path of an embedded BEIR folder inside the installed package."""
    if name not in EMBEDDED_DATASETS:
        raise ValueError(f"unknown embedded dataset {name!r}; available: {', '.join(EMBEDDED_DATASETS)}")
    return Path(str(resources.files("synthrank.data") / "embedded" / name))


def quickstart_queries_path() -> Path:
    """The 24 training queries of ``synthrank quickstart`` (disjoint from MEDLINE's own queries)."""
    return Path(str(resources.files("synthrank.data") / "embedded" / "quickstart" / "queries.tsv"))
