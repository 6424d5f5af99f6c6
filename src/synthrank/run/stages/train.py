"""The train stage: ``synthrank train`` on the run's train section into ``<run_dir>/train/``.

The section is a :class:`~synthrank.train.config.TrainConfig` without ``output_dir`` (the run
sets it); a source's ``data``/``corpus``/``queries`` may be ``@generate`` or ``@mine``, the
outputs of those stages in this run (:func:`train_config` resolves them).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import field_validator

from synthrank.run.stages.base import Stage, local_model, resolve, relative
from synthrank.train.config import LATER_TRAIN_FIELDS, TrainConfig

#: source fields that may name another stage's output (``@generate``, ``@mine``)
REF_FIELDS = ("data", "corpus", "queries")


class TrainSection(TrainConfig):
    """A run config's ``train:`` section: a TrainConfig whose ``output_dir`` the run sets."""

    output_dir: Path | None = None

    @field_validator("output_dir")
    @classmethod
    def _set_by_the_run(cls, value: Path | None) -> None:
        if value is not None:
            raise ValueError("set by synthrank run (<run_dir>/train); remove it")
        return None


def with_stage_outputs(section: TrainConfig, outputs: dict[str, Path]) -> TrainConfig:
    """``section`` with every ``@<stage>`` source field replaced by that stage's output path (``outputs``)."""
    sources = []
    for source in section.sources:
        update = {key: outputs[str(getattr(source, key))] for key in REF_FIELDS
                  if getattr(source, key) is not None and str(getattr(source, key)) in outputs}
        sources.append(source.model_copy(update=update) if update else source)
    return section.model_copy(update={"sources": sources})


def stage_outputs(run_folder: Path) -> dict[str, Path]:
    """``{"@generate": path, "@mine": path}``: what each referable stage's ``@name`` means in this run folder."""
    from synthrank.run.stages import STAGES

    return {stage.ref: stage.output(run_folder) for stage in STAGES.values() if stage.ref}


def train_config(config, base_dir: Path | None = None) -> TrainConfig:
    """The run's train section as the TrainConfig the trainer runs: ``@`` refs resolved, ``output_dir`` set."""
    folder = config.folder()
    resolved = with_stage_outputs(config.train, stage_outputs(folder))
    return TrainConfig.model_validate({**resolved.model_dump(), "output_dir": TrainStage().output(folder)})


class TrainStage(Stage):
    name = "train"
    section = TrainSection
    later_fields = {"training.log_batches": False, "training.report_to": [], "dev.offset": 0, "dev.allow_unknown_docs": False,
                    "dev.drop_own_id": False, **LATER_TRAIN_FIELDS}

    def inputs(self, config, base_dir: Path) -> dict[str, Path]:
        tc = train_config(config, base_dir)
        inputs: dict[str, Path] = {}
        for source in tc.sources:
            for key in REF_FIELDS:
                value = getattr(source, key)
                if value is not None:
                    inputs[f"{source.name}.{key}"] = resolve(value, base_dir)
        if tc.dev is not None:
            inputs["dev"] = resolve(tc.dev.data, base_dir)
        local = local_model(tc.base_model, base_dir)
        if local is not None:
            inputs["base_model"] = local
        return inputs

    def execute(self, config, base_dir: Path, progress: bool) -> tuple[dict, dict]:
        from synthrank.train.trainer import train

        tc = train_config(config, base_dir)
        local = local_model(tc.base_model, base_dir)
        if local is not None:
            tc = tc.model_copy(update={"base_model": str(local)})
        result = train(tc, base_dir=base_dir, resume=True, progress=progress)
        summary = {"steps": result.steps, "resumed_from": result.resumed_from, "train_seconds": round(result.seconds, 1),
                   "context_stats": result.context_stats, "final_dev": result.final_dev, "loss": tc.loss.name,
                   "base_model": tc.base_model}
        return {"model": str(result.model_dir), "loss_curve": str(self.output(config.folder()) / "loss_curve.png")}, summary

    def dumped_section(self, config, base_dir: Path) -> dict:
        return train_config(config, base_dir).model_dump(mode="json", exclude={"output_dir"})

    def report(self, manifest: dict, run_dir: Path) -> list[str]:
        from synthrank.train.contexts import ContextStats

        s, cfg = manifest.get("summary") or {}, manifest.get("config", {})
        loss, training = cfg.get("loss", {}), cfg.get("training", {})
        resumed = f" (resumed from {Path(s['resumed_from']).name})" if s.get("resumed_from") else ""
        lines = ["## Train", "",
                 (f"Base `{s.get('base_model')}`, loss `{loss.get('name')}` (temperature {loss.get('temperature')}, "
                  f"{loss.get('similarity')}), {s.get('steps')} steps of {training.get('batch_size')} queries, "
                  f"{s.get('train_seconds')} s{resumed}."), ""]
        try:
            lines += ["```", ContextStats(**s["context_stats"]).render(), "```", ""]
        except (KeyError, TypeError):
            pass
        curve = Path(manifest.get("outputs", {}).get("loss_curve", ""))
        if curve.is_file():
            lines += [f"![loss curve]({relative(curve, run_dir)})", ""]
        return lines
