"""``synthrank train`` and ``synthrank distill``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from synthrank.cli.app import app
from pydantic import ValidationError

from synthrank.cli.errors import exits_cleanly_on_bad_data, fail
from synthrank.cli.options import apply_data_root, data_root_parameter, given_dotted, model_parameters, option_error, with_parameters
from synthrank.train.config import TrainConfig


def train(
    config: Path = typer.Argument(..., help="YAML training config (see docs/train.md), or a `synthrank run` config (its train section)."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a config field: dotted.key=value (value parsed as YAML). Repeatable."),
    no_resume: bool = typer.Option(False, "--no-resume", help="Start from scratch: delete output_dir's checkpoints and model first."),
    push_to_hub: Optional[str] = typer.Option(None, "--push-to-hub", help="Upload the trained model (with its card) to this "
                                              "Hub repository OWNER/NAME; the token is read from $HF_TOKEN."),
    private: bool = typer.Option(False, "--private", help="With --push-to-hub: create the repository private."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    **options,
) -> None:
    """Train a bi-encoder on graded ranking contexts with a list-wise loss; resumes after a kill.

    Every field of the config is also an option (`--training.learning-rate 1e-5`, `--loss.name kl`);
    options win over `--set`, which wins over the file. Output: OUTPUT_DIR/model (a
    sentence-transformers folder with a model card), checkpoints, config.yaml, context_stats.json,
    log_history.json, loss_curve.png. Runs unchanged under
    `torchrun --nproc_per_node N -m synthrank.cli train CONFIG` (data-parallel; the losses
    gather the global batch).

    **Examples**

    ```
    synthrank train configs/scifact-synthetic-multilevel.yaml
    synthrank train my.yaml --loss.name kl --training.batch-size 16 --context.group-size 4
    synthrank train my.yaml --training.max-steps 20 -o runs/smoke
    ```
    """
    from synthrank.train.trainer import train as run_training

    apply_data_root(options.pop("data_root", None))
    cfg, base_dir = load_cli_train_config(config, list(set_ or []), given_dotted(TrainConfig, options))
    result = run_training(cfg, base_dir=base_dir, resume=not no_resume, progress=not quiet)
    resumed = f" (resumed from {result.resumed_from})" if result.resumed_from else ""
    print(f"trained {result.steps} steps in {result.seconds:.0f} s{resumed}; model: {result.model_dir}")
    if result.final_dev:
        print("dev: " + ", ".join(f"{k} = {v:.4f}" for k, v in result.final_dev.items()))
    if push_to_hub:
        from synthrank.hub import push_folder

        print(f"pushed: {push_folder(result.model_dir, push_to_hub, 'model', private=private)}")


def load_cli_train_config(path: Path, overrides: list[str], literal: dict) -> tuple[TrainConfig, Path]:
    """A training config file, or a run config's train section (``output_dir`` = ``<run_dir>/train``),
    with ``--set`` overrides and the options given on the command line applied."""
    from synthrank.config_io import read_yaml_mapping, set_dotted
    from synthrank.train.config import load_train_config

    raw = read_yaml_mapping(path)
    if not (isinstance(raw.get("train"), dict) and "sources" not in raw):
        return load_train_config(path, overrides, literal)
    from synthrank.run.config import load_run_config, train_config

    run_config, base_dir = load_run_config(path, [f"train.{o}" for o in overrides])
    resolved = train_config(run_config, base_dir).model_dump()
    for key, value in literal.items():
        set_dotted(resolved, key, value)
    try:
        return TrainConfig.model_validate(resolved), base_dir
    except ValidationError as err:
        raise ValueError(option_error(err)) from None


app.command()(exits_cleanly_on_bad_data(with_parameters(train, [data_root_parameter(),
                                                                *model_parameters(TrainConfig, short={"output_dir": "-o"})])))


DISTILL_EPILOG = """Examples:

  synthrank distill -o models/minilm-static-256

  synthrank distill --base all-MiniLM-L6-v2 --pca-dims 0 -o models/minilm-static-384

  synthrank evaluate -m models/minilm-static-256 -d ../shared/data/scifact
"""


@app.command(epilog=DISTILL_EPILOG)
@exits_cleanly_on_bad_data
def distill(
    base: str = typer.Option("all-MiniLM-L6-v2", "--base", "-b", help="Model to distill: `all-MiniLM-L6-v2` (the offline copy) or a local sentence-transformers / transformers folder. Never downloads."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder to write (a sentence-transformers model: StaticEmbedding + Normalize)."),
    pca_dims: int = typer.Option(256, "--pca-dims", min=0, help="Embedding dimension after PCA; 0 keeps the base dimension (no PCA)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the model files in a non-empty --out folder."),
) -> None:
    """Distill a fast static-embedding model (model2vec) from a sentence-transformers encoder.

    Each vocabulary token is embedded once by the base model; a text is the normalised mean of
    its token vectors. The folder is a normal sentence-transformers model: evaluate it with
    `synthrank evaluate -m FOLDER` and fine-tune it with `synthrank train` (`base_model: FOLDER`).
    """
    import time

    from synthrank.distill import distill_static

    started = time.perf_counter()
    try:
        folder = distill_static(base, out, pca_dims=pca_dims or None, overwrite=overwrite)
    except FileExistsError as err:
        fail(str(err))
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(folder), device="cpu")
    first = model[0]
    print(f"wrote {folder}: {type(first).__name__} with {first.num_embeddings} tokens x {first.embedding_dim} dims "
          f"(similarity {model.similarity_fn_name}) in {time.perf_counter() - started:.1f} s")
