"""Train a model on a dataset into a run directory (see :mod:`dgm.runs`).

>>> import dgm
>>> from dgm.train import TrainConfig, fit
>>> ds = dgm.load_dataset("mnist5k", transforms=["binarize"])
>>> run = fit(dgm.build("made", data=ds), ds, TrainConfig(epochs=300, patience=30), out="runs/made")

Everything that can be wrong with the request (options, devices, the run directory, the
checkpoint to resume) is checked before any file is written. During training a checkpoint is
written atomically at least every ``checkpoint_minutes``; Ctrl-C or SIGTERM saves a checkpoint
and the weights so far and raises :class:`TrainingInterrupted`; ``resume=True`` continues from
the newest checkpoint, wherever the directory has moved, appending to the logs.

With ``TrainConfig.monitor_every`` the model is sampled every so many training batches and
``monitor/*`` values logged, with a warning line when the samples collapse
(:mod:`dgm.train.monitor`). At the end of a run the training curves are drawn in
``training.png`` (:mod:`dgm.viz.training`), last: a failure to draw them is a warning line.

With ``TrainConfig.ema`` the saved weights are an exponential moving average of the trained
ones (:mod:`dgm.train.ema`), the one validation also runs on; the checkpoints keep the trained
weights and the average side by side.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import lightning as L
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.trainer.states import TrainerStatus
from lightning.pytorch.utilities.exceptions import SIGTERMException

from dgm.config import to_dict
from dgm.data.catalog import FILE_KINDS
from dgm.errors import ConfigError, DgmError, RunError
from dgm.eval import evaluate, quick_groups
from dgm.hardware import check_accelerator, is_worker_process
from dgm.models.base import GenerativeModel
from dgm.runs import (
    CONFIG,
    SAMPLES,
    WEIGHTS,
    RunRecord,
    check_out_path,
    check_run_free,
    read_metrics,
    read_record,
    remove_run,
    sample_files,
    save_weights,
    versions,
    write_metrics,
    write_record,
)
from dgm.train.callbacks import BestWeights, EarlyStop, progress_bar
from dgm.train.checkpoints import CheckpointInfo, PeriodicCheckpoint, newest_checkpoint, read_checkpoint
from dgm.train.config import TrainConfig
from dgm.train.ema import EMAWeights
from dgm.train.logs import make_loggers
from dgm.train.module import GenerativeTask
from dgm.train.monitor import TrainingMonitor, check_monitor
from dgm.viz.samples import save_samples_figure
from dgm.viz.training import TRAINING, plot_training

# A DDP run re-executes the command once per extra process; they must all use the run directory
# the first process chose, so it is passed down in the environment.
RUN_DIR_ENV = "DGM_RUN_DIR"
NO_TIME_LIMIT = timedelta(days=36500)


class TrainingInterrupted(RunError):
    """Training was stopped by Ctrl-C or SIGTERM; the checkpoint and the weights so far are saved."""

    def __init__(self, run_dir: Path, step: int, signal_name: str):
        self.run_dir, self.step, self.signal_name = run_dir, step, signal_name
        super().__init__(
            f"training interrupted ({signal_name}) at step {step}; checkpoint and weights saved in {run_dir}; "
            f"continue with: dgm train --resume --out {run_dir}"
        )


class _DropAdverts(logging.Filter):
    """Drop Lightning's advertising tips and notes about settings dgm chose from the console
    (its other messages stay)."""

    DROPPED = ("💡", "`Trainer(val_check_interval=", "Loading `train_dataloader` to estimate")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.DROPPED)


def quiet_lightning() -> None:
    """Silence Lightning's tips and the warnings that say nothing to a dgm user."""
    logger = logging.getLogger("lightning.pytorch.utilities.rank_zero")
    if not any(isinstance(f, _DropAdverts) for f in logger.filters):
        logger.addFilter(_DropAdverts())
    for pattern in (
        ".*LeafSpec.*is deprecated.*",
        ".*does not have many workers.*",
        ".*smaller than the logging interval.*",
        ".*resuming from a checkpoint that ended before the epoch ended.*",
        ".*callbacks used to create the checkpoint need to be provided.*",
        ".*Checkpoint directory .* exists and is not empty.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def new_run_dir(base: str | Path = "runs", name: str = "run") -> Path:
    """``base/name``, or ``base/name-2``, ``-3``... if taken."""
    base = Path(base)
    path, k = base / name, 2
    while path.exists():
        path, k = base / f"{name}-{k}", k + 1
    return path


def prepare_run_dir(
    run_dir: Path, model: GenerativeModel, config: TrainConfig, resume: bool, overwrite: bool
) -> CheckpointInfo | None:
    """Check that ``run_dir`` can take this run (writing nothing); return the checkpoint to
    resume from, or None to start from the beginning."""
    if resume and overwrite:
        raise ConfigError("--resume continues a run and --overwrite starts it again; pass one of them")
    check_out_path(run_dir)
    check_run_free(run_dir, resume, overwrite)
    if not resume:
        return None
    if not (run_dir / CONFIG).is_file():
        raise RunError(f"nothing to resume in {str(run_dir)!r}: it has no {CONFIG}; train it without --resume")
    path = newest_checkpoint(run_dir)
    if path is None:
        return None
    check_same_schedule(run_dir, config)
    info = read_checkpoint(path, model, run_dir)
    check_budget_left(info, config, run_dir)
    return info


def check_same_schedule(run_dir: Path, config: TrainConfig) -> None:
    """Refuse to resume with another learning-rate schedule than the run's: the checkpoint holds
    the state of the schedulers it was trained with (none for the constant one), so a new
    schedule would start from its first step, or freeze the learning rate where the old one was."""
    recorded = read_record(run_dir).train.get("lr_schedule", "constant")
    if recorded != config.lr_schedule:
        raise ConfigError(
            f"{run_dir} was trained with --lr-schedule {recorded}; resume it with the same schedule "
            f"(leave out --lr-schedule), or start again with --lr-schedule {config.lr_schedule} --overwrite"
        )


def check_budget_left(info: CheckpointInfo, config: TrainConfig, run_dir: Path) -> None:
    """Refuse to resume a run that has nothing left to do under ``config``, naming the option.

    A run killed after its last training step but before its weights, metrics and samples were
    written is not finished: resuming it writes them."""
    if not run_finished(run_dir, info):
        return
    spent = []
    if config.steps is not None and info.steps >= config.steps:
        spent.append(f"{info.steps} of {config.steps} steps")
    if config.default_epochs is not None and info.epochs >= config.default_epochs:
        spent.append(f"{info.epochs} of {config.default_epochs} epochs")
    if config.minutes is not None and info.train_seconds >= 60 * config.minutes:
        spent.append(f"{info.train_seconds / 60:.1f} of {config.minutes:g} minutes")
    if spent:
        raise RunError(
            f"{run_dir} has trained {spent[0]}, its whole budget; to train on, give a larger total, "
            f"e.g. --resume --out {run_dir} --steps {2 * max(info.steps, 1)}"
        )
    early = info.early_stopping
    if config.patience is not None and early is not None and early.get("wait_count", 0) >= config.patience:
        raise RunError(
            f"{run_dir} stopped early: no lower val/loss in {early['wait_count']} validations; to train on, "
            f"resume with a larger --patience, e.g. --patience {2 * config.patience}"
        )


def run_finished(run_dir: Path, info: CheckpointInfo) -> bool:
    """True when the run wrote its weights, metrics and samples after the checkpoint's last step."""
    steps = read_metrics(run_dir).get("steps", {}).get("value")
    samples, weights = run_dir / SAMPLES, run_dir / WEIGHTS
    drawn = samples.is_file() and weights.is_file() and samples.stat().st_mtime_ns >= weights.stat().st_mtime_ns
    return steps == info.steps and drawn


def make_trainer(config: TrainConfig, run_dir: Path, callbacks: list, batches_per_epoch: int) -> L.Trainer:
    """The Lightning Trainer for ``config``: budget, hardware and logs in ``run_dir``.

    Validation runs once per epoch, or once before the end when the step budget is shorter
    than an epoch (so early stopping and the best weights always have a validation loss)."""
    distributed = config.devices * config.num_nodes > 1
    val_every = 1.0
    if config.steps is not None and config.steps < batches_per_epoch:
        val_every = config.steps
    return L.Trainer(
        max_epochs=config.default_epochs if config.default_epochs is not None else -1,
        max_steps=config.steps if config.steps is not None else -1,
        accelerator=config.accelerator,
        devices=config.devices,
        num_nodes=config.num_nodes,
        strategy="ddp" if distributed else "auto",
        precision=config.precision,
        gradient_clip_val=config.grad_clip,
        callbacks=[progress_bar(), *callbacks],
        logger=make_loggers(run_dir),
        default_root_dir=str(run_dir),
        log_every_n_steps=10,
        val_check_interval=val_every,
        num_sanity_val_steps=0,
        enable_model_summary=False,
        enable_checkpointing=False,  # PeriodicCheckpoint writes the checkpoints
        deterministic=False,
    )


def fit(
    model: GenerativeModel,
    dataset,
    config: TrainConfig = TrainConfig(),
    out: str | Path | None = None,
    resume: bool = False,
    overwrite: bool = False,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Train ``model`` on ``dataset`` and write a complete run directory; returns its path.

    ``resume=True`` continues the run in ``out`` from its newest checkpoint (from the start if
    it was stopped before its first one) up to the budget of ``config``, a total over all
    sessions; ``overwrite=True`` replaces the run in ``out``. ``log`` receives progress
    messages (default: standard error). Only the first process of a multi-process run writes
    files. Raises :class:`TrainingInterrupted` after saving when stopped by Ctrl-C or SIGTERM.
    """
    log = log or _say
    if dataset.info != model.config.data:
        raise ConfigError(
            f"the model was built for {model.config.data.describe()} but the dataset gives "
            f"{dataset.info.describe()}; build it with dgm.build(name, data=dataset)"
        )
    check_accelerator(config.accelerator, config.devices)
    check_monitor(config.monitor_every, dataset)
    worker = is_worker_process() and RUN_DIR_ENV in os.environ
    if worker:
        run_dir = Path(os.environ[RUN_DIR_ENV])
        checkpoint = newest_checkpoint(run_dir) if resume else None
    else:
        run_dir = Path(out) if out is not None else new_run_dir("runs", f"{model.name}-{slug(dataset.spec)}")
        found = prepare_run_dir(run_dir, model, config, resume, overwrite)
        checkpoint = found.path if found else None
        if resume:
            log(
                f"resuming {run_dir} from step {found.steps}"
                if found
                else f"{run_dir} has no checkpoint: training it from the start"
            )
    L.seed_everything(config.seed, workers=True, verbose=False)
    quiet_lightning()

    train_loader = dataset.loader("train", config.batch_size, shuffle=True, drop_last=False)
    timer = Timer(duration=timedelta(minutes=config.minutes) if config.minutes else NO_TIME_LIMIT, verbose=False)
    best = BestWeights()
    ema = EMAWeights(config.ema) if config.ema is not None else None
    early = EarlyStop(config.patience) if config.patience is not None else None
    monitor = TrainingMonitor(dataset, config.monitor_every, config.seed, log) if config.monitor_every else None
    saver = PeriodicCheckpoint(run_dir, config.checkpoint_minutes, config.checkpoint_every)
    # Hooks run in this order: the best weights are copied while the EMA is swapped in for
    # validation; a checkpoint gets the EMA of its own step, the monitor's check of its own
    # batch, and the live weights after an interruption in validation.
    extra = [*([ema] if ema else []), *([monitor] if monitor else [])]
    callbacks = [timer, best, *extra, saver, *([early] if early else [])]
    trainer = make_trainer(config, run_dir, callbacks, len(train_loader))
    task = GenerativeTask(model, config)

    created = not run_dir.exists()
    if not worker:
        if overwrite:
            remove_run(run_dir)
        run_dir.mkdir(parents=True, exist_ok=True)
        write_record(run_dir, run_record(model, dataset, config))
    model.train()
    previous = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(run_dir.resolve())  # inherited by the DDP worker processes
    try:
        trainer.fit(
            task,
            train_dataloaders=train_loader,
            val_dataloaders=dataset.loader("val", config.batch_size, shuffle=False),
            ckpt_path=str(checkpoint) if checkpoint else None,
            weights_only=True,
        )
    except BaseException as error:
        if trainer.state.status == TrainerStatus.INTERRUPTED and isinstance(error, (SystemExit, KeyboardInterrupt)):
            if trainer.is_global_zero:
                save_progress(run_dir, task, best, timer, trainer, config, ema, monitor)
            signal_name = "SIGTERM" if isinstance(error, SIGTERMException) else "Ctrl-C"
            raise TrainingInterrupted(run_dir, trainer.global_step, signal_name) from None
        if created and not worker and newest_checkpoint(run_dir) is None and not isinstance(error, DgmError):
            remove_run(run_dir)  # nothing worth keeping: leave no half-made run behind
            if not any(run_dir.iterdir()):
                run_dir.rmdir()
        raise
    finally:
        if previous is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = previous
    if not trainer.is_global_zero:
        return run_dir
    log(stop_message(trainer, config, timer, early, best))
    save_progress(run_dir, task, best, timer, trainer, config, ema, monitor)
    log("evaluating on the test split")
    model.eval()
    found = evaluate(model, dataset, metrics=quick_groups(model, dataset))
    write_metrics(run_dir, {**found, **read_metrics(run_dir)}, replace=True)  # evaluation first
    log(f"drawing samples for {sample_files(dataset.info)}")
    n = config.eval_samples if dataset.info.is_image else None
    save_samples_figure(model, dataset, run_dir / SAMPLES, n=n, seed=config.seed)
    draw_training_curves(run_dir, log)
    return run_dir


def draw_training_curves(run_dir: Path, log: Callable[[str], None]) -> None:
    """Draw ``training.png`` from the run's logs; a failure is a warning line, never an error:
    the run is saved by now, and ``dgm plot RUN --what training`` draws the picture again."""
    try:
        plot_training(run_dir)
    except Exception as error:  # noqa: BLE001  (a picture must not lose a finished run, whatever went wrong)
        what = str(error).strip().splitlines()
        log(
            f"warning: {TRAINING} not drawn ({what[0] if what else type(error).__name__}); "
            f"draw it with: dgm plot {run_dir} --what training"
        )


def stop_message(trainer: L.Trainer, config: TrainConfig, timer: Timer, early: EarlyStop | None, best) -> str:
    """Why training ended, in one line."""
    if early is not None and early.stopped:
        why = f"early stopping: no lower val/loss in {early.wait_count} validations"
    elif config.minutes is not None and timer.time_remaining("train") <= 0:
        why = f"time budget of {config.minutes:g} minutes reached"
    elif config.steps is not None and trainer.global_step >= config.steps:
        why = f"step budget of {config.steps} reached"
    else:
        why = f"epoch budget of {config.default_epochs} reached"
    kept = ""
    weights = "EMA weights" if config.ema is not None else "weights"
    if config.keep == "best" and best.best_state is not None:
        kept = f"; keeping the {weights} of step {best.best_step} (val/loss {best.best_score:.4g})"
    elif config.ema is not None:
        kept = f"; keeping the EMA weights (decay {config.ema:g})"
    return f"stopped at step {trainer.global_step}: {why}{kept}"


def save_progress(
    run_dir: Path,
    task: GenerativeTask,
    best: BestWeights,
    timer: Timer,
    trainer,
    config,
    ema: EMAWeights | None = None,
    monitor: TrainingMonitor | None = None,
) -> None:
    """Save the weights and the training records; the new weights id drops every metric of
    older weights from metrics.json. The weights are the best so far with ``keep="best"`` (with
    an EMA: the EMA at the best validation), else the last ones (with an EMA: the last EMA).
    After an interruption the model gets its training weights back."""
    model = task.model
    state = None
    if (config.keep == "best" and best.best_state is not None) or ema is not None:
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if config.keep == "best" and best.best_state is not None:
        best.restore(task)
    elif ema is not None:
        ema.copy_to(model)
    save_weights(run_dir, model)
    write_metrics(run_dir, training_records(model, best, timer, trainer, ema, monitor), replace=True)
    if state is not None and trainer.state.status == TrainerStatus.INTERRUPTED:
        model.load_state_dict(state)


def training_records(
    model: GenerativeModel,
    best: BestWeights,
    timer: Timer,
    trainer,
    ema: EMAWeights | None = None,
    monitor: TrainingMonitor | None = None,
) -> dict:
    """metrics.json entries about training: totals over every session of the run."""
    records = {
        "train_time": {
            "value": round(timer.time_elapsed("train"), 2),
            "unit": "s",
            "what": "wall-clock training time, all sessions of the run",
        },
        "steps": {"value": trainer.global_step, "unit": "optimizer steps", "what": "training steps, all sessions"},
        "parameters": {
            "value": sum(p.numel() for p in model.parameters()),
            "unit": "count",
            "what": "trainable parameters",
        },
    }
    if best.best_state is not None:
        records["best_val_loss"] = {
            "value": best.best_score,
            "unit": "loss",
            "what": f"lowest val/loss, at step {best.best_step}",
        }
    if ema is not None:
        records["ema_decay"] = {
            "value": ema.decay,
            "unit": "decay",
            "what": f"the weights are an exponential moving average of the trained ones ({ema.updates} updates in all)",
        }
    if monitor is not None:
        records["monitor_warnings"] = monitor.record()
    return records


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
    if ":" in head and head.split(":")[0] in FILE_KINDS:
        head = Path(head.split(":", 1)[1]).stem
    return "".join(c if c.isalnum() else "-" for c in head).strip("-") or "data"
