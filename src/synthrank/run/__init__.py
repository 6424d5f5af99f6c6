"""``synthrank run``: one YAML config drives generate -> mine -> train -> evaluate, with a manifest
per stage (unchanged stages are skipped, killed ones resume) and a final ``report.md``.

    from synthrank.run import load_run_config, run_pipeline
    config, base_dir = load_run_config("configs/scifact-synthetic-multilevel.yaml")
    outcome = run_pipeline(config, base_dir)
    print(outcome.report)
"""

from synthrank.run.config import EvalDataset, EvaluateConfig, MineOptions, RunConfig, load_run_config
from synthrank.run.pipeline import RunOutcome, run_pipeline
from synthrank.run.stages import STAGE_NAMES as STAGES

__all__ = ["STAGES", "EvalDataset", "EvaluateConfig", "MineOptions", "RunConfig", "RunOutcome", "load_run_config", "run_pipeline"]
