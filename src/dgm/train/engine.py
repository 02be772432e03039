"""Train a model on a dataset into a run directory (see :mod:`dgm.runs`).

>>> import dgm
>>> from dgm.train import TrainConfig, fit
>>> ds = dgm.load_dataset("mnist5k", transforms=["binarize"])
>>> run = fit(dgm.build("made", data=ds), ds, TrainConfig(minutes=4), out="runs/made")
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger

from dgm.config import to_dict
from dgm.errors import ConfigError, RunError
from dgm.eval import evaluate, quick_groups
from dgm.models.base import GenerativeModel
from dgm.runs import (
    CONFIG,
    SAMPLES,
    RunRecord,
    save_weights,
    versions,
    write_metrics,
    write_record,
)
from dgm.train.callbacks import BestWeights, progress_bar
from dgm.train.config import TrainConfig
from dgm.train.module import GenerativeTask
from dgm.viz.samples import save_samples_figure

# A DDP run re-executes the command once per extra process; they must all use the run directory
# the first process chose, so it is passed down in the environment.
RUN_DIR_ENV = "DGM_RUN_DIR"


def is_worker_process() -> bool:
    """True in the extra processes of a multi-process run (they must not write run files)."""
    return int(os.environ.get("LOCAL_RANK", "0")) != 0 or int(os.environ.get("NODE_RANK", "0")) != 0


class _DropAdverts(logging.Filter):
    """Drop Lightning's advertising tips from the console (its other messages stay)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith("💡")


def quiet_lightning() -> None:
    """Silence Lightning's tips and the warnings that say nothing to a dgm user."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropAdverts) for f in logger.filters):
        logger.addFilter(_DropAdverts())
    for pattern in (
        ".*LeafSpec.*is deprecated.*",
        ".*does not have many workers.*",
        ".*smaller than the logging interval.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def new_run_dir(base: str | Path = "runs", name: str = "run") -> Path:
    """``base/name``, or ``base/name-2``, ``-3``... if taken."""
    base = Path(base)
    path, k = base / name, 2
    while path.exists():
        path, k = base / f"{name}-{k}", k + 1
    return path


def check_out_dir(out: Path, resume: bool) -> None:
    """Refuse to train into a folder holding another run unless resuming it."""
    if resume:
        if not (out / CONFIG).is_file():
            raise RunError(f"nothing to resume in {str(out)!r}: it has no {CONFIG}")
        if last_checkpoint(out) is None:
            raise RunError(f"nothing to resume in {str(out)!r}: no checkpoint in {out / 'checkpoints'}")
        return
    if (out / CONFIG).exists() and not is_worker_process():
        raise RunError(f"{str(out)!r} already holds a run; pass --resume to continue it, or choose another --out")


def last_checkpoint(run_dir: Path) -> Path | None:
    path = Path(run_dir) / "checkpoints" / "last.ckpt"
    return path if path.is_file() else None


def make_trainer(cfg: TrainConfig, run_dir: Path, callbacks: list) -> L.Trainer:
    """The Lightning Trainer for ``cfg``: budget, hardware, logs and checkpoints in ``run_dir``."""
    loggers = [CSVLogger(str(run_dir), name="logs", version="csv")]
    try:
        import tensorboard  # noqa: F401
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(str(run_dir), name="logs", version="tensorboard"))
    except ImportError:
        pass
    checkpoint = ModelCheckpoint(
        dirpath=str(run_dir / "checkpoints"),
        save_last=True,
        save_top_k=0,  # only last.ckpt: it is all --resume needs, and one write per save
        every_n_train_steps=cfg.checkpoint_every,
    )
    if cfg.patience is not None:
        callbacks = [*callbacks, EarlyStopping(monitor="val/loss", patience=cfg.patience, mode="min")]
    distributed = cfg.devices * cfg.num_nodes > 1
    return L.Trainer(
        max_epochs=cfg.default_epochs if cfg.default_epochs is not None else -1,
        max_steps=cfg.steps if cfg.steps is not None else -1,
        max_time={"minutes": cfg.minutes} if cfg.minutes is not None else None,
        accelerator=cfg.accelerator,
        devices=cfg.devices,
        num_nodes=cfg.num_nodes,
        strategy="ddp" if distributed else "auto",
        precision=cfg.precision,
        gradient_clip_val=cfg.grad_clip,
        callbacks=[checkpoint, progress_bar(), *callbacks],
        logger=loggers,
        default_root_dir=str(run_dir),
        log_every_n_steps=10,
        num_sanity_val_steps=0,
        enable_model_summary=False,
        deterministic=False,
    )


def fit(
    model: GenerativeModel,
    dataset,
    config: TrainConfig = TrainConfig(),
    out: str | Path | None = None,
    resume: bool = False,
) -> Path:
    """Train ``model`` on ``dataset`` and write a complete run directory; returns its path.

    The run is resumable from ``out/checkpoints/last.ckpt`` with ``resume=True``. Only the first
    process of a multi-process run writes files.
    """
    if config.batch_size < 1:
        raise ConfigError(f"batch_size must be at least 1, got {config.batch_size}")
    if dataset.info != model.config.data:
        raise ConfigError(
            f"the model was built for {model.config.data.describe()} but the dataset gives "
            f"{dataset.info.describe()}; build it with dgm.build(name, data=dataset)"
        )
    if is_worker_process() and RUN_DIR_ENV in os.environ:
        run_dir = Path(os.environ[RUN_DIR_ENV])
    else:
        run_dir = Path(out) if out is not None else new_run_dir("runs", f"{model.name}-{slug(dataset.spec)}")
    check_out_dir(run_dir, resume)
    L.seed_everything(config.seed, workers=True, verbose=False)
    quiet_lightning()

    if not is_worker_process():
        run_dir.mkdir(parents=True, exist_ok=True)
        write_record(run_dir, run_record(model, dataset, config))

    model.train()
    task = GenerativeTask(model, config)
    best = BestWeights()
    trainer = make_trainer(config, run_dir, [best])
    started = time.perf_counter()
    previous = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir.resolve())  # inherited by the DDP worker processes
    try:
        trainer.fit(
            task,
            train_dataloaders=dataset.loader("train", config.batch_size, shuffle=True, drop_last=False),
            val_dataloaders=dataset.loader("val", config.batch_size, shuffle=False),
            ckpt_path=str(last_checkpoint(run_dir)) if resume else None,
            weights_only=True,
        )
    finally:
        if previous is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = previous
    elapsed = time.perf_counter() - started
    if not trainer.is_global_zero:
        return run_dir
    if config.keep == "best":
        best.restore(task)
    model.eval()
    save_weights(run_dir, model)
    write_metrics(
        run_dir,
        {
            **evaluate(model, dataset, metrics=quick_groups(model, dataset)),
            "train_time": {
                "value": round(elapsed, 2),
                "unit": "s",
                "what": "wall-clock training time of the last session",
            },
            "steps": {"value": trainer.global_step, "unit": "optimizer steps", "what": "training steps taken"},
            "best_val_loss": {
                "value": best.best_score,
                "unit": "loss",
                "what": f"lowest val/loss, at step {best.best_step}",
            },
            "parameters": {
                "value": sum(p.numel() for p in model.parameters()),
                "unit": "count",
                "what": "trainable parameters",
            },
        },
    )
    save_samples_figure(
        model,
        dataset,
        run_dir / SAMPLES,
        n=None if not dataset.info.is_image else config.eval_samples,
        seed=config.seed,
    )
    return run_dir


def run_record(model: GenerativeModel, dataset, config: TrainConfig) -> RunRecord:
    """What config.json records for a run of ``model`` on ``dataset``."""
    return RunRecord(
        model=model.name,
        config=to_dict(model.config),
        data={
            "spec": dataset.spec,
            "transforms": list(dataset.transforms),
            "classes": None if dataset.classes is None else [int(c) for c in dataset.classes],
        },
        train=to_dict(config),
        seed=config.seed,
        versions=versions(),
    )


def slug(spec: str) -> str:
    """A folder-name-safe short form of a data spec (``toy2d:gmm8`` -> ``toy2d-gmm8``)."""
    head = spec.split("?")[0]
    if ":" in head and head.split(":")[0] in ("npz", "idx", "folder", "csv"):
        head = Path(head.split(":", 1)[1]).stem
    return "".join(c if c.isalnum() else "-" for c in head).strip("-") or "data"
