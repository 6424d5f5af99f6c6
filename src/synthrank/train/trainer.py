"""``synthrank train``: a bi-encoder on graded ranking contexts with the sentence-transformers trainer.

What happens, in order:
1. the ranking contexts are built from the config's sources (:mod:`synthrank.train.contexts`);
2. one dataset block per epoch is drawn (groups resampled with ``seed + epoch``), each block
   shuffled with ``seed + epoch`` and cut to a whole number of global batches; the blocks are
   concatenated and read **sequentially**, so a checkpoint's step number pins exactly which
   rows were seen - resuming after a kill replays nothing and skips nothing;
3. ``SentenceTransformerTrainer`` runs the loss (optionally cached, GradCache) with AdamW,
   linear warmup/decay, checkpoints every ``save_steps`` in ``output_dir/checkpoints``;
   under ``torchrun`` it is data-parallel and the losses gather the global batch;
4. the final model is saved to ``output_dir/model`` (a sentence-transformers folder) with a
   model card stating data, loss and config; ``output_dir`` also gets ``config.yaml``,
   ``context_stats.json``, ``log_history.json``, ``loss_curve.png``, ``train_info.json`` (world size,
   data-parallel wrapper, precision used) and ``training_fingerprint.json``: a run resumes only
   when its fingerprint (the config without bookkeeping fields, plus the world size) matches.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from synthrank.data.jsonl import atomic_write
from synthrank.config_io import resolve_path
from synthrank.train.config import TrainConfig, fingerprint_differences, training_fingerprint
from synthrank.evaluate.encode import native_bf16

logger = logging.getLogger(__name__)


@dataclass
class TrainResult:
    """Where the trained model is, what the run did, and how long it took."""

    model_dir: Path
    steps: int
    resumed_from: str | None
    seconds: float
    context_stats: dict
    final_dev: dict | None


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


class TrainingConflict(ValueError):
    """``output_dir`` holds a training run of another configuration; resuming it would be wrong."""


def resolve_precision(bf16: bool) -> tuple[str, str | None]:
    """``(precision used, warning)``: bf16 only where the device runs it natively, else fp32 with a warning."""
    if not bf16:
        return "fp32", None
    device_type = "cuda" if torch.cuda.is_available() else "cpu"
    if native_bf16(device_type):
        return "bf16", None
    if device_type == "cuda":
        return "fp32", "training.bf16: this GPU has no native bfloat16; training in fp32"
    return "fp32", ("training.bf16: this CPU has no native bfloat16 (AVX512-BF16/AMX); emulated bf16 is ~20x slower, "
                    "so training runs in fp32")


def _check_resumable(out: Path, fingerprint: dict, resume: bool) -> None:
    """Refuse to resume a run of another configuration; with ``resume=False`` clear the old run."""
    import shutil

    has_run = (out / "checkpoints").is_dir() and any((out / "checkpoints").glob("checkpoint-*")) or (out / "model").exists()
    if not has_run:
        return
    if not resume:
        if int(os.environ.get("RANK", "0")) == 0:
            shutil.rmtree(out / "checkpoints", ignore_errors=True)
            shutil.rmtree(out / "model", ignore_errors=True)
            shutil.rmtree(out / "batches", ignore_errors=True)
        return
    path = out / "training_fingerprint.json"
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise TrainingConflict(f"{out} holds a training run with no readable training_fingerprint.json (an older or foreign "
                               "run): cannot tell whether it has this configuration; use another output_dir, or --no-resume "
                               "to start over") from None
    changed = fingerprint_differences(old, fingerprint)
    if changed:
        shown = ", ".join(changed[:6]) + (", ..." if len(changed) > 6 else "")
        raise TrainingConflict(f"{out} holds a training run of another configuration (changed: {shown}); use another "
                               "output_dir, or --no-resume to start over (the old run is deleted)")


class _BatchLoggingCollator:
    """The trainer's collator, appending every batch's queries to ``path`` (one JSON list per line).

    Other attributes are the wrapped collator's (the trainer reads some). Lines follow the data
    loader, which may load one batch ahead of the last trained step."""

    def __init__(self, collate, path: Path) -> None:
        self._collate, self._path = collate, path
        path.parent.mkdir(parents=True, exist_ok=True)

    def __getattr__(self, name):
        return getattr(self._collate, name)

    def __call__(self, features):
        with open(self._path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps([f["query"] for f in features]) + "\n")
        return self._collate(features)


def epoch_counter(optimizer_steps_per_epoch: float):
    """A trainer callback that sets ``state.epoch`` to passes over the ranking contexts.

    The trainer reads the epoch blocks as one dataset (``num_train_epochs=1``), so its own ``epoch`` would run
    from 0 to 1 whatever ``training.epochs`` says; every logged row (log_history.json, TensorBoard, W&B)
    reads ``state.epoch`` after the step, so it gets ``global_step / optimizer_steps_per_epoch`` instead."""
    from transformers import TrainerCallback

    class EpochsOfTheContexts(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            state.epoch = state.global_step / optimizer_steps_per_epoch
            return control

    return EpochsOfTheContexts()


def build_training_dataset(contexts, epochs: int, seed: int, global_batch: int):
    """Concatenated epoch blocks ``[epoch 0 rows..., epoch 1 rows...]``, each shuffled and cut
    to a multiple of ``global_batch`` (a batch never mixes epochs; a query appears once per
    batch). Returns ``(dataset, rows_per_epoch)``."""
    from datasets import concatenate_datasets

    from synthrank.train.contexts import build_epoch_dataset

    blocks = []
    for epoch in range(epochs):
        block = build_epoch_dataset(contexts, epoch).shuffle(seed=seed + epoch)
        usable = (len(block) // global_batch) * global_batch
        if usable == 0:
            raise ValueError(f"only {len(block)} training queries, fewer than one global batch of {global_batch}; lower training.batch_size")
        blocks.append(block.select(range(usable)))
    return concatenate_datasets(blocks), len(blocks[0])


def sequential_batch_sampler(dataset, batch_size, drop_last, valid_label_columns=None, generator=None, seed=0):
    """Batches in dataset order (the dataset is pre-shuffled per epoch; see the module docstring)."""
    from sentence_transformers.base.sampler import DefaultBatchSampler
    from torch.utils.data import SequentialSampler

    return DefaultBatchSampler(SequentialSampler(dataset), batch_size=batch_size, drop_last=drop_last)


def last_complete_checkpoint(checkpoints: Path) -> str | None:
    """Newest ``checkpoint-N`` whose ``trainer_state.json`` (written last) parses; newer,
    incomplete ones (a kill during saving) are removed so training can write them again."""
    import shutil

    if not checkpoints.is_dir():
        return None
    found = sorted((p for p in checkpoints.glob("checkpoint-*") if p.name.split("-")[-1].isdigit()), key=lambda p: int(p.name.split("-")[-1]), reverse=True)
    for path in found:
        try:
            json.loads((path / "trainer_state.json").read_text())
            return str(path)
        except (OSError, ValueError):
            logger.warning("removing incomplete checkpoint %s (interrupted while saving)", path)
            shutil.rmtree(path, ignore_errors=True)
    return None


def build_loss(model, config: TrainConfig):
    """The configured registered loss, wrapped in GradCache when ``loss.cached``."""
    from synthrank.train.losses import get_loss_class

    options = config.loss.loss_options()
    if config.loss.cached:
        from synthrank.train.losses import CachedListwiseLoss

        return CachedListwiseLoss(model, config.loss.name, mini_batch_size=config.loss.mini_batch_size, **options)
    return get_loss_class(config.loss.name)(model, **options)


def training_arguments(config: TrainConfig, out: Path, max_steps: int, precision: str, with_dev: bool, progress: bool):
    """The sentence-transformers training arguments of a config (checkpoints under ``out/checkpoints``)."""
    from sentence_transformers import SentenceTransformerTrainingArguments

    t = config.training
    return SentenceTransformerTrainingArguments(
        output_dir=str(out / "checkpoints"),
        num_train_epochs=1,  # the epochs are already laid out in the dataset
        max_steps=max_steps,
        per_device_train_batch_size=t.batch_size,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        learning_rate=t.learning_rate,
        warmup_steps=t.warmup_ratio,
        weight_decay=t.weight_decay,
        lr_scheduler_type=t.lr_scheduler,
        seed=t.seed,
        data_seed=t.seed,
        save_strategy="steps",
        save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        logging_steps=t.logging_steps,
        eval_strategy="steps" if (with_dev and t.eval_steps > 0) else "no",
        eval_steps=t.eval_steps or None,
        batch_sampler=sequential_batch_sampler,
        dataloader_drop_last=True,
        dataloader_pin_memory=torch.cuda.is_available(),
        bf16=precision == "bf16",
        use_cpu=not torch.cuda.is_available(),  # on CPU (gloo under torchrun): data-parallel, bf16 by autocast
        report_to=list(t.report_to) or "none",
        prompts=_training_prompts(config),
        disable_tqdm=not progress,
        ddp_find_unused_parameters=True,  # BERT-style models carry a pooler that mean pooling never uses
    )


def _training_prompts(config: TrainConfig) -> dict[str, str] | None:
    """The dataset-column prompts of ``config.prompts``: the query column and every passage column."""
    if config.prompts is None:
        return None
    columns = {"query": config.prompts.query, **{f"passage_{i}": config.prompts.document for i in range(config.context.group_size)}}
    return {column: prompt for column, prompt in columns.items() if prompt} or None


def _write_outputs(out: Path, config: TrainConfig, trainer, model, stats: dict, final_dev: dict | None, precision: str,
                   checkpoint: str | None) -> None:
    """Rank 0's files after training: history, context statistics, train info, config, loss curve, card."""
    from synthrank.train.report import plot_loss_curve, write_model_card_section

    history = trainer.state.log_history
    with atomic_write(out / "log_history.json") as handle:
        json.dump(history, handle, indent=1)
    with atomic_write(out / "context_stats.json") as handle:
        json.dump(stats, handle, indent=1)
    with atomic_write(out / "train_info.json") as handle:
        json.dump({"world_size": _world_size(), "data_parallel": type(trainer.model_wrapped).__name__,
                   "precision": precision, "device": str(model.device), "steps": trainer.state.global_step,
                   "resumed_from": checkpoint}, handle, indent=1)
    with atomic_write(out / "config.yaml") as handle:
        yaml.safe_dump(json.loads(config.model_dump_json()), handle, sort_keys=False)
    plot_loss_curve(history, out / "loss_curve.png", title=f"{config.loss.name} on {', '.join(s.name for s in config.sources)}")
    write_model_card_section(out / "model", config, stats, final_dev, trainer.state.global_step, precision)


def _output_folder(config: TrainConfig) -> Path:
    out = Path(config.output_dir)
    out = out if out.is_absolute() else Path.cwd() / out
    out.mkdir(parents=True, exist_ok=True)
    return out


def train(config: TrainConfig, base_dir: Path | None = None, resume: bool = True, progress: bool = True) -> TrainResult:
    """Train as configured; resume from the newest checkpoint in ``output_dir`` when ``resume``.

    Steps: refuse to resume another configuration's run; build the ranking contexts and the
    epoch-by-epoch dataset; load the base model and the loss; train (from the newest complete
    checkpoint); save the model with the similarity it was trained for; evaluate on the dev split;
    write the run's files (:func:`_write_outputs`)."""
    from sentence_transformers import SentenceTransformerTrainer
    from transformers import set_seed

    from synthrank.evaluate.encoders import load_encoder, set_max_seq_length
    from synthrank.train.contexts import build_contexts
    from synthrank.train.dev_evaluator import DevSetEvaluator

    started = time.perf_counter()
    base_dir = Path(base_dir or Path.cwd())
    out = _output_folder(config)
    fingerprint = training_fingerprint(config, _world_size())
    _check_resumable(out, fingerprint, resume)
    precision, warning = resolve_precision(config.training.bf16)
    if warning:
        logger.warning(warning)
        print(f"warning: {warning}", file=sys.stderr)
    set_seed(config.training.seed)

    sources = [s.model_copy(update={k: resolve_path(getattr(s, k), base_dir) for k in ("data", "corpus", "queries") if getattr(s, k)}) for s in config.sources]
    contexts = build_contexts(sources, config.context)
    stats = contexts.stats.to_dict()
    if progress:
        print(contexts.stats.render(), file=sys.stderr)
    global_batch = config.training.batch_size * _world_size()
    dataset, rows_per_epoch = build_training_dataset(contexts, config.training.epochs, config.training.seed, global_batch)

    model = load_encoder(config.base_model)
    set_max_seq_length(model, config.training.max_seq_length)
    evaluator = None
    if config.dev is not None:
        evaluator = DevSetEvaluator(config.dev.model_copy(update={"data": resolve_path(config.dev.data, base_dir)}))
    steps_per_epoch = rows_per_epoch // global_batch
    accumulation = config.training.gradient_accumulation_steps
    max_steps = config.training.max_steps if config.training.max_steps > 0 else max(1, steps_per_epoch * config.training.epochs // accumulation)
    args = training_arguments(config, out, max_steps, precision, evaluator is not None, progress)
    previous = os.environ.get("TENSORBOARD_LOGGING_DIR")
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(out / "logs")  # transformers' TensorBoard callback reads it when created
    try:
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=dataset, loss=build_loss(model, config),
                                             evaluator=evaluator)
    finally:
        if previous is None:
            os.environ.pop("TENSORBOARD_LOGGING_DIR", None)
        else:
            os.environ["TENSORBOARD_LOGGING_DIR"] = previous
    trainer.add_callback(epoch_counter(max(steps_per_epoch / accumulation, 1e-9)))
    if config.training.log_batches:
        trainer.data_collator = _BatchLoggingCollator(trainer.data_collator,
                                                      out / "batches" / f"rank-{os.environ.get('RANK', '0')}.jsonl")
    if trainer.is_world_process_zero():
        with atomic_write(out / "training_fingerprint.json") as handle:
            json.dump(fingerprint, handle, indent=1)
    checkpoint = last_complete_checkpoint(out / "checkpoints") if resume else None
    if checkpoint:
        logger.warning("resuming from %s", checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)

    model.similarity_fn_name = config.loss.similarity  # evaluate and mine search with the similarity it was trained for
    if config.prompts is not None:  # encode_query / encode_document apply them in evaluation and mining
        model.prompts = {**(model.prompts or {}), "query": config.prompts.query, "document": config.prompts.document}
    if trainer.is_world_process_zero():
        model.save(str(out / "model"))  # saved before the final dev evaluation, which must not cost the model
    final_dev = None
    if evaluator is not None:
        try:
            final_dev = evaluator(model)
        except Exception as err:  # report, keep the trained model
            logger.warning("final dev evaluation failed: %s", err)
    if trainer.is_world_process_zero():
        _write_outputs(out, config, trainer, model, stats, final_dev, precision, checkpoint)
    return TrainResult(out / "model", trainer.state.global_step, checkpoint, time.perf_counter() - started, stats, final_dev)
