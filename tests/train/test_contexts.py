"""Ranking contexts: the four SyCL configurations on tiny fixtures, sampling rules, and bad input."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import yaml

from synthrank.data import DataFormatError
from synthrank.train import contexts as contexts_module
from synthrank.train.contexts import (
    DROP_NO_CANDIDATES,
    DROP_NO_POSITIVE,
    DROP_SHORT_AFTER_FILL,
    DROP_TOO_FEW,
    ContextConfig,
    SourceConfig,
    build_contexts,
    build_epoch_dataset,
    sample_groups,
)
from synthrank.train.sources import load_queries_ref

QUERIES = {"q1": "how do cats purr", "q2": "why did stocks fall", "q3": "tomato soup recipe", "q4": "largest volcano"}
# Real judgments (SciFact style: positives are level 1). q1 has two positives, q3 none.
REAL_QRELS = {"q1": {"r1": 1, "r2": 1}, "q2": {"r3": 1}, "q3": {"r4": 0}, "q4": {"r5": 1}}
# BM25-mined negatives (level 0). q4 has a single one.
MINED = {"q1": ["r6", "r7", "r8"], "q2": ["r9", "r10"], "q3": ["r11"], "q4": ["r12"]}
# Synthetic levels: q1 two passages per level, q2 one per level, q4 only levels 1 and 0.
SYNTHETIC = {"q1": [3, 3, 2, 2, 1, 1, 0, 0], "q2": [3, 2, 1, 0], "q4": [1, 0]}


def _jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _qrels(path: Path, rows: list[tuple[str, str, int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t{lvl}\n" for q, d, lvl in rows), encoding="utf-8")


def synthetic_id(qid: str, level: int, idx: int) -> str:
    return f"s-abcdef12-{qid}-L{level}-{idx}"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The layout of the module docstring's YAML: data/scifact, runs/scifact-bm25-neg.tsv, data/synthetic/scifact-train."""
    real = tmp_path / "data" / "scifact"
    _jsonl(real / "corpus.jsonl", [{"_id": f"r{i}", "title": f"Title {i}", "text": f"real passage number {i}"} for i in range(1, 13)])
    _jsonl(real / "queries.jsonl", [{"_id": q, "text": t} for q, t in QUERIES.items()])
    _qrels(real / "qrels" / "train.tsv", [(q, d, lvl) for q, judged in REAL_QRELS.items() for d, lvl in judged.items()])
    _qrels(tmp_path / "runs" / "scifact-bm25-neg.tsv", [(q, d, 0) for q, docs in MINED.items() for d in docs])
    synth = tmp_path / "data" / "synthetic" / "scifact-train"
    rows, judged = [], []
    for qid, levels in SYNTHETIC.items():
        for idx, level in enumerate(levels):
            rows.append({"_id": synthetic_id(qid, level, idx), "title": "", "text": f"synthetic {qid} level {level} #{idx}"})
            judged.append((qid, synthetic_id(qid, level, idx), level))
    _jsonl(synth / "corpus.jsonl", rows)
    _qrels(synth / "qrels" / "train.tsv", judged)
    (synth / "queries.ref.json").write_text(json.dumps({"source": "../../scifact", "ids": sorted(SYNTHETIC), "note": "..."}))
    return tmp_path


def real_source(**kw) -> dict:
    return {"name": "real", "data": "data/scifact", "split": "train", **kw}


def bm25_source(**kw) -> dict:
    return {"name": "bm25", "data": "runs/scifact-bm25-neg.tsv", "corpus": "data/scifact", **kw}


def synthetic_source(**kw) -> dict:
    return {"name": "synthetic", "data": "data/synthetic/scifact-train", **kw}


def rows_by_query(contexts, epoch: int) -> dict[str, dict]:
    return {g.query_id: g for g in sample_groups(contexts, epoch)}


def text_of(doc_id: str) -> str:
    if doc_id.startswith("r"):
        return f"Title {doc_id[1:]} real passage number {doc_id[1:]}"
    qid, level, idx = re.match(r"s-\w+-(q\d)-L(\d)-(\d)", doc_id).groups()
    return f"synthetic {qid} level {level} #{idx}"


# --- the four configurations of method.md ---------------------------------------------------


def test_real_binary(root: Path, caplog) -> None:
    """Real positives + 2 BM25-mined negatives, G = 3, InfoNCE: the positive first, labels [1, 0, 0]."""
    with caplog.at_level(logging.WARNING, logger="synthrank.train.contexts"):
        contexts = build_contexts([real_source(keep_levels=[1]), bm25_source()], {"group_size": 3, "binary_threshold": 1}, base_dir=root)
    assert contexts.stats.dropped == {DROP_NO_POSITIVE: 1}  # q3 has only a mined negative
    assert "dropped 1 of 4 queries" in caplog.text and DROP_NO_POSITIVE in caplog.text
    dataset = build_epoch_dataset(contexts, epoch=0)
    assert dataset.column_names == ["query", "passage_0", "passage_1", "passage_2", "label"]
    assert dataset["query"] == [QUERIES["q1"], QUERIES["q2"], QUERIES["q4"]]
    groups = rows_by_query(contexts, 0)
    assert groups["q1"].labels == [1.0, 0.0, 0.0] and groups["q1"].passages[0] in {text_of("r1"), text_of("r2")}
    assert set(groups["q1"].doc_ids[1:]) <= set(MINED["q1"]) and groups["q1"].sources == ["real", "bm25", "bm25"]
    assert groups["q2"].doc_ids == ["r3", "r9", "r10"] or groups["q2"].doc_ids == ["r3", "r10", "r9"]
    # q4 has one negative: the third slot is padding, masked by the losses (label -1)
    assert groups["q4"].labels == [1.0, 0.0, -1.0] and groups["q4"].passages[2] == ""
    assert contexts.stats.padded_slots_per_epoch == 1 and contexts.stats.short_queries == 1
    positives_seen = {rows_by_query(contexts, e)["q1"].doc_ids[0] for e in range(12)}
    assert positives_seen == {"r1", "r2"}  # resampled every epoch


def test_synthetic_binary(root: Path) -> None:
    """Synthetic levels >= 2 positive, < 2 negative, G = 3: one positive then two negatives."""
    contexts = build_contexts([synthetic_source()], {"group_size": 3, "binary_threshold": 2}, base_dir=root)
    assert contexts.stats.dropped == {DROP_NO_POSITIVE: 1}  # q4 has only levels 1 and 0
    assert contexts.queries == {"q1": QUERIES["q1"], "q2": QUERIES["q2"]}  # text through queries.ref.json
    for epoch in range(6):
        for group in sample_groups(contexts, epoch):
            assert group.labels == [1.0, 0.0, 0.0]
            assert group.levels[0] >= 2 and all(level < 2 for level in group.levels[1:])
    assert len({rows_by_query(contexts, e)["q1"].doc_ids[0] for e in range(20)}) == 4


def test_synthetic_multi_level(root: Path) -> None:
    """All four levels, a random subset of G = 4 per query, resampled each epoch, highest level first."""
    contexts = build_contexts([synthetic_source()], {"group_size": 4, "seed": 5}, base_dir=root)
    epoch0 = build_epoch_dataset(contexts, 0)
    assert epoch0.to_dict() == build_epoch_dataset(build_contexts([synthetic_source()], {"group_size": 4, "seed": 5}, base_dir=root), 0).to_dict()
    q2 = rows_by_query(contexts, 0)["q2"]
    assert q2.labels == [3.0, 2.0, 1.0, 0.0] and q2.passages[0] == text_of(synthetic_id("q2", 3, 0))
    subsets = {tuple(rows_by_query(contexts, e)["q1"].doc_ids) for e in range(10)}
    assert len(subsets) > 1  # resampled
    for epoch in range(10):
        for group in sample_groups(contexts, epoch):
            real = [x for x in group.labels if x >= 0]
            assert real == sorted(real, reverse=True) and len(group.labels) == 4
    assert rows_by_query(contexts, 0)["q4"].labels == [1.0, 0.0, -1.0, -1.0]


def test_synthetic_plus_real(root: Path) -> None:
    """Real positives -> 3, 2 BM25 negatives -> 1, synthetic 0-3, G = 7."""
    sources = [
        real_source(keep_levels=[1], relabel={1: 3}, max_per_query=1),
        bm25_source(relabel={0: 1}, max_per_query=2),
        synthetic_source(max_per_level=1),
    ]
    contexts = build_contexts(sources, {"group_size": 7}, base_dir=root)
    for epoch in range(5):
        groups = rows_by_query(contexts, epoch)
        for qid in ("q1", "q2"):
            group = groups[qid]
            assert group.labels == [3.0, 3.0, 2.0, 1.0, 1.0, 1.0, 0.0]
            assert sorted(group.sources) == ["bm25", "bm25", "real", "synthetic", "synthetic", "synthetic", "synthetic"]
    # q3 has no real positive and no synthetic passages: only one mined negative, padded to 7
    assert rows_by_query(contexts, 0)["q3"].labels == [1.0] + [-1.0] * 6
    # the pool before the per-epoch caps: 4 real positives + 3 synthetic at level 3; 7 mined + 4 synthetic at level 1
    assert contexts.stats.levels == {3: 7, 2: 3, 1: 11, 0: 4}


def test_the_yaml_examples_in_the_module_docstring_build(root: Path) -> None:
    blocks = re.split(r"\n\s*\n", contexts_module.__doc__.split("(YAML; ``sources`` and ``context`` sections)::")[1].split("Add ``fill")[0])
    configs = [yaml.safe_load(block) for block in blocks if "sources:" in block]
    assert len(configs) == 4
    sizes = []
    for config in configs:
        contexts = build_contexts(config["sources"], config["context"], base_dir=root)
        dataset = build_epoch_dataset(contexts, 0)
        sizes.append(len(dataset["label"][0]))
    assert sizes == [3, 3, 4, 7]


# --- sampling rules ---------------------------------------------------------------------------


def test_dataset_contract(root: Path) -> None:
    from datasets import List, Value

    dataset = build_epoch_dataset(build_contexts([synthetic_source()], {"group_size": 4}, base_dir=root), 3)
    assert dataset.features["label"] == List(Value("float32"))
    assert all(dataset.features[f"passage_{i}"] == Value("string") for i in range(4))
    assert all(len(labels) == 4 for labels in dataset["label"])


def test_padding_label_matches_the_losses() -> None:
    losses = pytest.importorskip("synthrank.train.losses")
    assert contexts_module.PAD_LABEL == losses.PAD_LABEL == -1.0


def test_selection_strategies(root: Path) -> None:
    def labels(selection: str, epoch: int = 0) -> list[float]:
        contexts = build_contexts([synthetic_source()], {"group_size": 4, "selection": selection}, base_dir=root)
        return rows_by_query(contexts, epoch)["q1"].labels

    assert all(labels("top_levels", e) == [3.0, 3.0, 2.0, 2.0] for e in range(3))
    assert all(labels("one_per_level", e) == [3.0, 2.0, 1.0, 0.0] for e in range(3))
    contexts = build_contexts([synthetic_source()], {"group_size": 3, "selection": "top_levels", "binary_threshold": 2}, base_dir=root)
    groups = rows_by_query(contexts, 0)  # the positive of the highest level, the hardest negatives
    assert groups["q1"].levels == [3, 1, 1] and groups["q2"].levels == [3, 1, 0]


def test_fill_from_mined_source(root: Path) -> None:
    """fill: mined tops short groups up from the fill source; still short -> dropped and counted."""
    config = {"group_size": 3, "binary_threshold": 1, "fill": "mined", "fill_source": "bm25"}
    contexts = build_contexts([real_source(keep_levels=[1]), bm25_source()], config, base_dir=root)
    assert contexts.stats.dropped == {DROP_SHORT_AFTER_FILL: 1}  # q4: 1 positive + 1 mined negative < 3
    assert contexts.stats.fill_only_queries == 1  # q3: only in the fill source, never a context of its own
    assert contexts.stats.filled_slots_per_epoch == 4 and contexts.stats.padded_slots_per_epoch == 0
    for group in sample_groups(contexts, 0):
        assert group.labels == [1.0, 0.0, 0.0] and group.sources == ["real", "bm25", "bm25"]
    graded = build_contexts([synthetic_source(), bm25_source()], {"group_size": 3, "fill": "mined", "fill_source": "bm25"}, base_dir=root)
    q4 = rows_by_query(graded, 0)["q4"]
    assert q4.labels == [1.0, 0.0, 0.0] and q4.sources == ["synthetic", "synthetic", "bm25"]
    assert graded.stats.dropped == {} and graded.stats.filled_slots_per_epoch == 1
    graded = build_contexts([synthetic_source(), bm25_source()], {"group_size": 4, "fill": "mined", "fill_source": "bm25"}, base_dir=root)
    assert graded.stats.dropped == {DROP_SHORT_AFTER_FILL: 1} and set(graded.pools) == {"q1", "q2"}  # q4: 2 + 1 < 4


def test_min_candidates_and_no_candidates_are_counted(root: Path) -> None:
    contexts = build_contexts([synthetic_source()], {"group_size": 4, "min_candidates": 3}, base_dir=root)
    assert contexts.stats.dropped == {DROP_TOO_FEW: 1} and set(contexts.pools) == {"q1", "q2"}
    contexts = build_contexts([real_source(keep_levels=[1]), synthetic_source()], {"group_size": 2}, base_dir=root)
    assert contexts.stats.queries_seen == 3 and contexts.stats.dropped == {}  # q3's level-0 judgment filtered: never a candidate
    contexts = build_contexts([real_source(keep_levels=[1]), bm25_source()], {"group_size": 2}, base_dir=root)
    assert DROP_NO_CANDIDATES not in contexts.stats.dropped and contexts.stats.queries_kept == 4
    assert "4 of 4 queries kept" in contexts.stats.render()


def test_duplicate_texts_are_removed_and_counted(root: Path) -> None:
    _jsonl(root / "dup" / "corpus.jsonl", [{"_id": "a", "title": "Title 1", "text": "real passage number 1"}, {"_id": "b", "text": "new text"}])
    _qrels(root / "dup.tsv", [("q1", "a", 2), ("q1", "b", 2)])
    contexts = build_contexts([real_source(), {"name": "dup", "data": "dup.tsv", "corpus": "dup"}], {"group_size": 4}, base_dir=root)
    assert contexts.stats.duplicates_removed == 1
    assert [c.doc_id for c in contexts.pools["q1"]["dup"]] == ["b"]


def test_queries_ref_json(root: Path) -> None:
    ref = root / "data" / "synthetic" / "scifact-train" / "queries.ref.json"
    assert set(load_queries_ref(ref)) == {"q1", "q2", "q4"}
    ref.write_text(json.dumps({"source": str(root / "data" / "scifact" / "queries.jsonl"), "ids": ["q1"]}))
    assert list(load_queries_ref(ref)) == ["q1"]
    ref.write_text(json.dumps({"source": "../../scifact", "ids": ["q1", "q99"]}))
    with pytest.raises(DataFormatError, match="ids: 1 of 2 query ids are not in"):
        load_queries_ref(ref)
    ref.write_text(json.dumps({"ids": ["q1"]}))
    with pytest.raises(DataFormatError, match="source: missing"):
        load_queries_ref(ref)
    ref.write_text(json.dumps({"source": "../../nowhere", "ids": ["q1"]}))
    with pytest.raises(DataFormatError, match=r"queries.ref.json:0: source: queries source '../../nowhere' not found"):
        build_contexts([synthetic_source()], {"group_size": 4}, base_dir=root)


# --- bad input --------------------------------------------------------------------------------


def test_unknown_source_path(root: Path) -> None:
    with pytest.raises(DataFormatError, match=r"nothing-here:0: -: source 'real': no such file or folder"):
        build_contexts([real_source(data="nothing-here")], {"group_size": 3}, base_dir=root)
    with pytest.raises(DataFormatError, match=r"no qrels for split 'dev' \(available: train\)"):
        build_contexts([real_source(split="dev")], {"group_size": 3}, base_dir=root)


def test_qrels_row_naming_a_missing_document(root: Path) -> None:
    mined = root / "runs" / "scifact-bm25-neg.tsv"
    mined.write_text(mined.read_text() + "q2\tr404\t0\n")
    line = len(mined.read_text().splitlines())
    with pytest.raises(DataFormatError) as err:
        build_contexts([real_source(), bm25_source()], {"group_size": 3}, base_dir=root)
    assert str(err.value) == f"{mined}:{line}: corpus-id: unknown document id 'r404' (not in corpus.jsonl)"
    contexts = build_contexts([real_source(), bm25_source(allow_unknown_docs=True)], {"group_size": 3}, base_dir=root)
    assert contexts.stats.sources["bm25"]["unknown_docs_skipped"] == 1


def test_inconsistent_configurations(root: Path) -> None:
    with pytest.raises(ValueError, match="`corpus` is required"):
        build_contexts([bm25_source(corpus=None)], {"group_size": 3}, base_dir=root)
    with pytest.raises(ValueError, match="fill_source 'mined' is not a source"):
        build_contexts([real_source(), bm25_source()], {"group_size": 3, "fill": "mined", "fill_source": "mined"}, base_dir=root)
    with pytest.raises(ValueError, match="unique"):
        build_contexts([real_source(), real_source()], {"group_size": 3}, base_dir=root)
    for bad in [{"group_size": 3, "fill": "mined"}, {"group_size": 3, "fill_source": "bm25"}, {"group_size": 1, "binary_threshold": 1},
                {"group_size": 3, "min_candidates": 4}, {"group_size": 3, "selection": "best"}, {"group_size": 3, "typo": 1}]:
        with pytest.raises(ValueError):
            ContextConfig.model_validate(bad)
    with pytest.raises(ValueError):
        SourceConfig.model_validate({"name": "x", "data": "d", "relabel": {1: -1}})
    with pytest.raises(ValueError):
        build_contexts([], {"group_size": 3})


def test_conflicting_query_texts(root: Path) -> None:
    _jsonl(root / "other.jsonl", [{"_id": q, "text": "something else entirely" if q == "q1" else t} for q, t in QUERIES.items()])
    with pytest.raises(ValueError, match="query 'q1' has different text in sources 'real' and 'bm25'"):
        build_contexts([real_source(), bm25_source(queries="other.jsonl")], {"group_size": 3}, base_dir=root)


def test_qrels_query_outside_the_queries_file(root: Path) -> None:
    qrels = root / "data" / "scifact" / "qrels" / "train.tsv"
    qrels.write_text(qrels.read_text() + "q77\tr1\t1\n")
    with pytest.raises(DataFormatError, match=r"train.tsv:\d+: query-id: unknown query id 'q77'"):
        build_contexts([real_source()], {"group_size": 3}, base_dir=root)


def test_scifact_real_positives(shared_data: Path, tmp_path: Path) -> None:
    scifact = shared_data / "scifact"
    (tmp_path / "neg.tsv").write_text("0\t31715818\t0\n")  # one pair, to exercise a shared corpus read once
    contexts = build_contexts(
        [{"name": "real", "data": str(scifact), "split": "train", "relabel": {1: 3}},
         {"name": "neg", "data": str(tmp_path / "neg.tsv"), "corpus": str(scifact)}],
        {"group_size": 2},
    )
    assert contexts.stats.queries_kept == 809 and contexts.stats.levels[3] == 919
    dataset = build_epoch_dataset(contexts, 0)
    assert len(dataset) == 809 and all(labels[0] == 3.0 for labels in dataset["label"])
