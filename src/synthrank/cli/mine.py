"""``synthrank mine``: its options are the fields of :class:`~synthrank.mine.MineOptions`."""

from __future__ import annotations

from pathlib import Path

import typer

from synthrank.cli.app import app
from synthrank.cli.errors import exits_cleanly_on_bad_data
from synthrank.cli.options import apply_data_root, build_options, data_root_parameter, model_parameters, with_parameters
from synthrank.config_io import resolve_path
from synthrank.mine import MineOptions

MINE_EPILOG = """Examples:

  synthrank mine --queries ../shared/data/scifact --split train --out runs/scifact-bm25-neg.tsv

  synthrank mine --queries ../shared/data/scifact --rank-range 1:1000 --count 2 --seed 13 -o neg.tsv

  synthrank mine --queries data/scifact --method dense -m all-MiniLM-L6-v2 --rank-range 30:200 --sample top -o dense-neg.tsv

  synthrank mine --queries queries.tsv --corpus data/corpus.jsonl --known data/qrels/train.tsv --level 1 -o neg.tsv
"""


def mine(
    out: Path = typer.Option(..., "--out", "-o", help="Qrels TSV to write (query-id, corpus-id, score = --level)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    **options,
) -> None:
    """Mine hard negatives from a BM25 or dense ranking, skipping known positives; write them as qrels.

    Each query gets `--count` documents from ranks `--rank-range` of the ranking, none of them a
    known positive (level >= `--positive-level`). The qrels file becomes a source of the
    ranking contexts (`data: negatives.tsv`, `corpus: <the corpus>`). Deterministic for a seed.
    """
    from synthrank.data import write_qrels_tsv
    from synthrank.mine import load_mining_inputs, mine_hard_negatives

    apply_data_root(options.pop("data_root", None))
    job = build_options(MineOptions, options)
    here = Path.cwd()
    loaded, docs, judged = load_mining_inputs(resolve_path(job.queries, here), job.split,
                                              resolve_path(job.corpus, here) if job.corpus else None,
                                              [resolve_path(k, here) for k in job.known])
    result = mine_hard_negatives(job.select(loaded), docs, judged, job.settings(), cache=job.embedding_cache(),
                                 progress=not quiet)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_qrels_tsv(out, result.qrels)
    s = result.stats
    print(f"wrote {s['pairs']} negatives (level {job.level}) for {s['queries'] - s['queries_without_negatives']} of "
          f"{s['queries']} queries to {out}")
    if s["queries_short"]:
        print(f"{s['queries_short']} queries had fewer than {job.count} eligible documents in ranks {job.rank_range} "
              f"({s['queries_without_negatives']} had none)")
    print(f"skipped in range: {s['positives_skipped']} known positives, {s['zero_score_skipped']} zero-score BM25 documents")


_PARAMETERS = [data_root_parameter(), *model_parameters(MineOptions, short={"model": "-m", "count": "-n", "corpus": "-c"})]
app.command("mine", epilog=MINE_EPILOG)(exits_cleanly_on_bad_data(with_parameters(mine, _PARAMETERS)))
