"""The generate stage: ``synthrank generate`` into ``<run_dir>/generate/`` (store + export)."""

from __future__ import annotations

from pathlib import Path

from synthrank.generate.filters import FilterSettings
from synthrank.generate.job import EXECUTION_FIELDS, GenerateJob
from synthrank.generate.prompts import DEFAULT_COLLECTION
from synthrank.run.stages.base import Stage, relative, resolve, section_paths


class GenerateStage(Stage):
    name = "generate"
    section = GenerateJob
    ref = "@generate"
    keep_on_change = True
    later_fields = {"offset": 0, "style_corpus": None, "style_words": 120, "collection": DEFAULT_COLLECTION,
                    "check_labels_with": None, "levels_file": None, "filters": FilterSettings().model_dump()}

    def output(self, run_folder: Path) -> Path:
        return Path(run_folder) / "generate" / "export"

    def inputs(self, config, base_dir: Path) -> dict[str, Path]:
        return section_paths(config.generate, base_dir, ("queries", "seed_from", "levels_file"))

    def execute(self, config, base_dir: Path, progress: bool) -> tuple[dict, dict]:
        from synthrank.generate.job import run_generate_job

        job = config.generate
        stage_dir = config.folder() / "generate"
        update = {"store": stage_dir / "store.sqlite", "export": self.output(config.folder()), **self.inputs(config, base_dir)}
        if job.style_corpus is not None:
            update["style_corpus"] = resolve(job.style_corpus, base_dir)
        summary = run_generate_job(job.model_copy(update=update), progress=progress, replace_export=True)
        return {"export": str(update["export"]), "store": str(update["store"])}, summary

    def dumped_section(self, config, base_dir: Path) -> dict:
        # how fast or where rows are generated is not what is generated: left out of the fingerprint
        return config.generate.model_dump(mode="json", exclude=set(EXECUTION_FIELDS))

    def report(self, manifest: dict, run_dir: Path) -> list[str]:
        from synthrank.generate.diagnose import render_diagnose_table, render_informativeness_table

        m, s = manifest, manifest.get("summary") or {}
        counts = s.get("counts", {})
        lines = ["## Generate", "",
                 (f"Model `{s.get('model_id')}`, prompt `{m['config'].get('prompt')}`, levels {m['config'].get('levels')}, "
                  f"{s.get('queries')} queries; this run generated {s.get('done_rows')} rows "
                  f"({s.get('failed_rows')} failed) at {s.get('tokens_per_s')} tokens/s.")]
        if counts:
            filters = ", ".join(f"{k} {v}" for k, v in counts.get("filters", {}).items() if k != "kept" and v) or "none"
            lines.append(f"Kept {counts.get('kept')} of {counts.get('rows')} passages (filtered: {filters}).")
        fidelity = s.get("fidelity")
        if fidelity:
            lines += ["", ("Level fidelity (independent judges score every kept passage against its query; Kendall tau "
                           "between intended level and score, averaged over queries):"), "", render_diagnose_table(fidelity)]
            png = Path(m["outputs"]["export"]) / "diagnose.png"
            if png.is_file():
                lines += ["", f"![scores by level]({relative(png, run_dir)})"]
            if fidelity.get("informativeness"):
                lines += ["", render_informativeness_table(fidelity["informativeness"])]
            check = fidelity.get("label_check")
            if check:
                lines += ["", f"Label check: {check['contradicted']} of {check['of']} passages contradicted ({check['rule']}); "
                              f"by level {check['by_level']}; qrels without them: `qrels/checked.tsv` (train with `split: checked`)."]
        return lines + [""]
