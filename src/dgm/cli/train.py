"""``dgm train``: options and config file in, a run directory out.

Everything is checked before Lightning is imported and before any file is written: the config
file, every option's type and range, the devices, the data, the model's size and the run
directory (and, when resuming, its checkpoint).
"""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from dgm.cli.common import command, fail, print_metrics
from dgm.errors import ConfigError, DgmError

TRAIN_KEYS_FROM_OPTIONS = (
    "epochs",
    "steps",
    "minutes",
    "batch_size",
    "lr",
    "lr_schedule",
    "weight_decay",
    "grad_clip",
    "seed",
    "accelerator",
    "devices",
    "num_nodes",
    "checkpoint_every",
    "patience",
    "ema",
    "monitor_every",
)
FILE_KEYS = {"model", "data", "transforms", "classes", "config", "train", "out"}
# Exit codes of a run stopped by a signal, as a shell reports them (128 + signal number).
SIGNAL_EXIT = {"Ctrl-C": 130, "SIGTERM": 143}


def read_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML training config: keys model, data, transforms, classes, config, train, out."""
    import yaml

    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"cannot read config file {str(path)!r}: {e.strerror}") from None
    try:
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {str(path)!r} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping of keys, e.g. 'model: made'")
    unknown = sorted(set(values) - FILE_KEYS)
    if unknown:
        raise ConfigError(f"unknown key '{unknown[0]}' in {path}; valid keys: {', '.join(sorted(FILE_KEYS))}")
    for key in ("config", "train"):
        if not isinstance(values.get(key, {}), dict):
            raise ConfigError(f"'{key}' in {path} must be a mapping of field: value")
    return values


def split_sets(pairs: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """``--set`` pairs: model-config fields, and ``train.FIELD`` training fields. A training
    field given without its prefix (``--set lr=...``) is an error that names ``train.lr``."""
    from dgm.config import parse_assignments

    model_sets, train_sets = {}, {}
    for key, value in parse_assignments(pairs).items():
        if key.startswith("train."):
            train_sets[key.removeprefix("train.")] = value
        else:
            model_sets[key] = value
    return model_sets, train_sets


def check_model_keys(model_sets: dict[str, Any], config_class) -> None:
    """Refuse a ``--set`` key that is a training field given without ``train.``."""
    from dgm.config import field_types
    from dgm.train.config import TrainConfig

    model_fields, training_fields = field_types(config_class), field_types(TrainConfig)
    for key in model_sets:
        if key not in model_fields and key in training_fields:
            option = f"--{key.replace('_', '-')}"
            raise ConfigError(
                f"'{key}' is a training setting, not a model field: use --set train.{key}=VALUE (or {option})"
            )


def train_values(opts: dict[str, Any], file: dict[str, Any]) -> dict[str, Any]:
    """Training fields from the config file, overridden by the command-line options given."""
    values = {**file.get("train", {})}
    values.update({k: opts[k] for k in TRAIN_KEYS_FROM_OPTIONS if opts.get(k) is not None})
    return values


def model_train_defaults(name: str | None, values: dict[str, Any], train_sets: dict[str, Any]) -> dict[str, Any]:
    """The training defaults of model ``name`` (``GenerativeModel.train_defaults``) that neither
    the options, the config file nor ``--set train.*`` give; {} for an unknown name (refused later)."""
    from dgm.registry import list_models

    if name not in {row["name"] for row in list_models()}:
        return {}
    from dgm.registry import get

    return {k: v for k, v in get(name).train_defaults.items() if k not in values and k not in train_sets}


@command()
def train(
    model: Annotated[
        str | None,
        typer.Argument(metavar="MODEL", help="Model name (see 'dgm list'); taken from the run when resuming."),
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            "-d",
            metavar="DATA",
            help="Dataset: mnist5k, digits, toy2d:gmm8, npz:PATH, idx:PATH, folder:PATH, csv:PATH, text:PATH, wav:PATH.",
        ),
    ] = None,
    transform: Annotated[
        list[str] | None,
        typer.Option(
            "--transform",
            "-t",
            metavar="T",
            help="Data transform, repeatable, applied in order: binarize, binarize:stochastic, dequantize, scale, scale:-1,1, logit.",
        ),
    ] = None,
    classes: Annotated[
        str | None, typer.Option(metavar="LABELS", help="Keep only these labels, e.g. 0-8 or 0,2,4.")
    ] = None,
    epochs: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Budget in epochs, a total over every session of the run (default 20 when no budget is given).",
        ),
    ] = None,
    steps: Annotated[
        int | None, typer.Option(metavar="N", help="Budget in optimizer steps, a total over every session.")
    ] = None,
    minutes: Annotated[
        float | None,
        typer.Option(
            metavar="M",
            help="Wall-clock bound on the training time, a total over every session; use it as a safety bound.",
        ),
    ] = None,
    batch_size: Annotated[int | None, typer.Option(metavar="N", help="Batch size (default 128).")] = None,
    lr: Annotated[float | None, typer.Option(metavar="LR", help="Learning rate of AdamW (default 1e-3).")] = None,
    lr_schedule: Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help="constant, or cosine: anneal the learning rate to 0 over the --steps or --epochs budget (default constant).",
        ),
    ] = None,
    weight_decay: Annotated[float | None, typer.Option(metavar="W", help="Decoupled weight decay (default 0).")] = None,
    grad_clip: Annotated[float | None, typer.Option(metavar="NORM", help="Clip gradients to this norm.")] = None,
    patience: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Early stopping: stop after N validations (one per epoch) without a lower validation loss.",
        ),
    ] = None,
    ema: Annotated[
        float | None,
        typer.Option(
            metavar="DECAY",
            help="Keep an exponential moving average of the weights with this decay (e.g. 0.999) and save it for sampling and evaluation.",
        ),
    ] = None,
    monitor_every: Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Every N training batches, sample the model and log its mode coverage (toy2d:gmm8, grid25) or "
            "predicted-digit histogram (digit images), with a warning when the samples collapse.",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="KEY=VALUE",
            help="Model config field, repeatable: --set hidden=512,512; training fields as train.FIELD=VALUE.",
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            metavar="FILE",
            help="YAML file with keys model, data, transforms, classes, config (model fields), train (training fields), out.",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(metavar="DIR", help="Run directory (default runs/MODEL-DATA).")] = None,
    resume: Annotated[
        bool,
        typer.Option(
            "--resume",
            help="Continue the run in --out from its newest checkpoint, up to the budget given now (or the recorded one).",
        ),
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the run in --out and start again.")] = False,
    seed: Annotated[int | None, typer.Option(metavar="S", help="Random seed (default 0).")] = None,
    accelerator: Annotated[
        str | None, typer.Option(metavar="NAME", help="cpu, gpu, mps or auto (default auto).")
    ] = None,
    devices: Annotated[
        int | None, typer.Option(metavar="N", help="Processes/GPUs per node; more than 1 trains with DDP.")
    ] = None,
    num_nodes: Annotated[int | None, typer.Option(metavar="N", help="Number of nodes for multi-node DDP.")] = None,
    checkpoint_every: Annotated[
        int | None,
        typer.Option(
            metavar="N", help="Also checkpoint every N steps (a checkpoint is written at least every minute anyway)."
        ),
    ] = None,
) -> None:
    """Train a model and write a run directory (config, weights, metrics, samples, logs, checkpoints).

    Example: dgm train made --data mnist5k --transform binarize --epochs 500 --patience 30 --out runs/made
    """
    out_dir = out
    try:
        with contextlib.redirect_stdout(sys.stderr):  # progress bars and Lightning's messages
            run_dir = _train(locals())
    except KeyboardInterrupt:  # after training, while the results were being written
        where = f" --out {out_dir}" if out_dir else " --out RUN"
        fail(f"interrupted; the last checkpoint is kept: 'dgm train --resume{where}' finishes the run", 130)
    except DgmError as e:
        from dgm.train.engine import TrainingInterrupted

        if isinstance(e, TrainingInterrupted):
            typer.echo("", err=True)  # end the progress bar's line
            fail(str(e), SIGNAL_EXIT[e.signal_name])
        fail(str(e))
    from dgm.hardware import is_worker_process
    from dgm.runs import read_metrics

    if is_worker_process():
        return
    typer.echo(f"run saved in {run_dir}")
    print_metrics(read_metrics(run_dir))


def _train(opts: dict[str, Any]) -> Path:
    from dgm.config import from_dict, override
    from dgm.hardware import check_accelerator
    from dgm.runs import check_out_path, check_run_free
    from dgm.train.config import BUDGET_KEYS, TrainConfig

    if opts["resume"] and opts["overwrite"]:
        raise ConfigError("--resume continues a run and --overwrite starts it again; pass one of them")
    file = read_config_file(opts["config"]) if opts["config"] else {}
    out = opts["out"] or (Path(file["out"]) if "out" in file else None)
    if out is not None:
        check_out_path(out)
        check_run_free(out, opts["resume"], opts["overwrite"])
    model_sets, train_sets = split_sets(opts["set_"] or [])
    values = train_values(opts, file)
    defaults = {} if opts["resume"] else model_train_defaults(opts["model"] or file.get("model"), values, train_sets)
    values = {**defaults, **values}
    if opts["resume"]:
        from dgm.runs import read_record

        if out is None:
            raise ConfigError("--resume needs --out RUN_DIR, the run to continue")
        record = read_record(out)
        if opts["model"] and opts["model"] != record.model:
            raise ConfigError(f"{out} holds a '{record.model}' run, not '{opts['model']}'")
        recorded = dict(record.train)
        if any(k in values or k in train_sets for k in BUDGET_KEYS):  # a new budget replaces the old one
            recorded = {k: v for k, v in recorded.items() if k not in BUDGET_KEYS}
        values = {**recorded, **values}
    train_config = override(from_dict(TrainConfig, values), train_sets)
    check_accelerator(train_config.accelerator, train_config.devices)
    model, dataset = _resumed_model(out) if opts["resume"] else _new_model(opts, file, model_sets, train_config)
    train_config, defaults = _monitor_where_it_applies(train_config, defaults, dataset)
    typer.echo(f"training {model.name} on {dataset.describe()}; budget {train_config.budget()}", err=True)
    if defaults:
        given = ", ".join(f"{k} {v}" for k, v in defaults.items())
        typer.echo(f"note: {model.name}'s training defaults: {given} (the options override them)", err=True)
    for note in model.notes(dataset.transforms):
        typer.echo(f"note: {note}", err=True)
    from dgm.train.engine import fit  # imports Lightning: only once the input is known to be good

    return fit(model, dataset, train_config, out=out, resume=opts["resume"], overwrite=opts["overwrite"])


def _monitor_where_it_applies(train_config, defaults: dict[str, Any], dataset):
    """A model's default ``monitor_every`` is dropped on data the monitor cannot measure (a GAN
    on csv: data, say); one given by the user there is refused before anything is written."""
    import dataclasses

    from dgm.train.monitor import check_monitor, monitor_kind

    if "monitor_every" in defaults and monitor_kind(dataset) is None:
        defaults = {k: v for k, v in defaults.items() if k != "monitor_every"}
        train_config = dataclasses.replace(train_config, monitor_every=None)
    check_monitor(train_config.monitor_every, dataset)
    return train_config, defaults


def _resumed_model(out: Path):
    from dgm.registry import build_from_dict
    from dgm.runs import load_dataset_of, read_record

    record = read_record(out)
    return build_from_dict(record.model, record.config), load_dataset_of(out)  # weights come from the checkpoint


def _new_model(opts: dict[str, Any], file: dict[str, Any], model_sets: dict[str, Any], train_config):
    import torch

    from dgm.config import override
    from dgm.data import load_dataset
    from dgm.models.size import check_model_size
    from dgm.registry import get, make_config

    name = opts["model"] or file.get("model")
    spec = opts["data"] or file.get("data")
    if not name:
        raise ConfigError("name a model: dgm train MODEL --data DATA (see 'dgm list')")
    if not spec:
        raise ConfigError("name the data with --data, e.g. --data mnist5k (see 'dgm list')")
    cls = get(name)
    check_model_keys(model_sets, cls.Config)
    transforms = opts["transform"] if opts["transform"] else file.get("transforms", [])
    classes = opts["classes"] if opts["classes"] is not None else file.get("classes")
    dataset = load_dataset(spec, transforms=transforms, classes=classes)
    config = override(make_config(name, dataset, **file.get("config", {})), model_sets)
    check_model_size(cls, config, train_config.max_parameters)
    torch.manual_seed(train_config.seed)  # the initial weights follow the run's seed
    return cls(config), dataset
