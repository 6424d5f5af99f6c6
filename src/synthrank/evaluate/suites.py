"""Named evaluation suites: lists of data sets with the settings their benchmark uses.

- ``beir-14``: the SyCL paper's zero-shot suite (ArguAna, Climate-FEVER, CQADupStack android,
  DBPedia, FEVER, FiQA, HotpotQA, NFCorpus, NQ, Quora, SCIDOCS, SciFact, Touche-2020, TREC-COVID),
  test splits (MS MARCO-style dev for none of them), ArguAna and Quora with the query's own id
  removed from its results, as BEIR evaluates them;
- ``trec-dl``: TREC DL 2019 and 2020 passage (through ``ir_datasets``), binary metrics at label >= 2.

Each entry is an :class:`~synthrank.evaluate.options.EvalDataset`; ``data`` is a data set name
(:mod:`synthrank.data.named`), fetched on first use.
"""

from __future__ import annotations

from synthrank.evaluate.options import EvalDataset

_BEIR_14 = ["arguana", "climate-fever", "cqadupstack/android", "dbpedia-entity", "fever", "fiqa", "hotpotqa", "nfcorpus",
            "nq", "quora", "scidocs", "scifact", "webis-touche2020", "trec-covid"]
_OWN_ID = {"arguana", "quora"}

SUITES: dict[str, list[EvalDataset]] = {
    "beir-14": [EvalDataset(data=f"beir:{name}", split="test", drop_own_id=name in _OWN_ID) for name in _BEIR_14],
    "trec-dl": [EvalDataset(data=f"irds:msmarco-passage/trec-dl-{year}/judged", split="test", relevance_level=2)
                for year in (2019, 2020)],
}


def suite(name: str) -> list[EvalDataset]:
    """The data sets of a named suite; ValueError naming the suites."""
    if name not in SUITES:
        raise ValueError(f"unknown suite {name!r}; the suites are {', '.join(SUITES)}")
    return SUITES[name]
