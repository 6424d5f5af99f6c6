"""The mine stage: ``synthrank mine`` into ``<run_dir>/mine/negatives.qrels.tsv``."""

from __future__ import annotations

import sys
from pathlib import Path

from synthrank.mine import MineOptions
from synthrank.run.stages.base import Stage, section_paths


class MineStage(Stage):
    name = "mine"
    section = MineOptions
    ref = "@mine"
    later_fields = {"offset": 0, "limit": None, "batch_size": 64, "cache_dir": None, "use_cache": True, "similarity": None}

    def output(self, run_folder: Path) -> Path:
        return Path(run_folder) / "mine" / "negatives.qrels.tsv"

    def inputs(self, config, base_dir: Path) -> dict[str, Path]:
        return section_paths(config.mine, base_dir, ("queries", "corpus", "known"))

    def execute(self, config, base_dir: Path, progress: bool) -> tuple[dict, dict]:
        from synthrank.data import write_qrels_tsv
        from synthrank.mine import load_mining_inputs, mine_hard_negatives

        job = config.mine
        inputs = self.inputs(config, base_dir)
        queries, corpus, known = load_mining_inputs(inputs["queries"], job.split, inputs.get("corpus"),
                                                    [inputs[k] for k in inputs if k.startswith("known_")])
        result = mine_hard_negatives(job.select(queries), corpus, known, job.settings(), cache=job.embedding_cache(),
                                     progress=progress)
        out = self.output(config.folder())
        out.parent.mkdir(parents=True, exist_ok=True)
        write_qrels_tsv(out, result.qrels)
        print(f"mine: {result.stats['pairs']} negatives for {result.stats['queries'] - result.stats['queries_without_negatives']} "
              f"of {result.stats['queries']} queries -> {out}", file=sys.stderr)
        return {"negatives": str(out)}, result.stats

    def report(self, manifest: dict, run_dir: Path) -> list[str]:
        s = manifest.get("summary") or {}
        return ["## Mine", "", (f"{s.get('pairs')} hard negatives for {s.get('queries', 0) - s.get('queries_without_negatives', 0)} "
                                f"of {s.get('queries')} queries ({s.get('queries_short')} with fewer than asked); skipped "
                                f"{s.get('positives_skipped')} known positives and {s.get('zero_score_skipped')} zero-score "
                                f"documents. Settings: {s.get('settings')}."), ""]
