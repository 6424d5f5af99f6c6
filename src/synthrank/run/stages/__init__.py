"""The stages of ``synthrank run``, registered in pipeline order.

``STAGES`` maps each name to its :class:`~synthrank.run.stages.base.Stage` object; the run config
has one optional section per registered stage (its ``section`` model). A new stage is one module
here plus one ``register(...)`` line below, placed where it runs in the pipeline.
"""

from __future__ import annotations

from synthrank.run.stages.base import Stage

STAGES: dict[str, Stage] = {}


def register(stage: Stage) -> Stage:
    """Add a stage after the ones registered before it."""
    if not stage.name or stage.name in STAGES:
        raise ValueError(f"stage name {stage.name!r} is empty or already registered")
    STAGES[stage.name] = stage
    return stage


def get_stage(name: str) -> Stage:
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; the stages are {', '.join(STAGES)}")
    return STAGES[name]


from synthrank.run.stages.generate import GenerateStage  # noqa: E402
from synthrank.run.stages.mine import MineStage  # noqa: E402
from synthrank.run.stages.train import TrainStage  # noqa: E402
from synthrank.run.stages.evaluate import EvaluateStage  # noqa: E402

register(GenerateStage())
register(MineStage())
register(TrainStage())
register(EvaluateStage())

#: the stage names in pipeline order
STAGE_NAMES = tuple(STAGES)

__all__ = ["STAGES", "STAGE_NAMES", "Stage", "get_stage", "register"]
