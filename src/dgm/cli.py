"""The ``dgm`` command: list, train, sample, eval.

Only ``dgm train`` imports PyTorch Lightning; the other commands start fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from dgm.errors import ConfigError, DgmError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Deep generative models: train, sample, evaluate and compare them on the same data.",
)

TRAIN_KEYS_FROM_OPTIONS = (
    "epochs",
    "steps",
    "minutes",
    "batch_size",
    "lr",
    "weight_decay",
    "grad_clip",
    "seed",
    "accelerator",
    "devices",
    "num_nodes",
    "checkpoint_every",
    "patience",
)
FILE_KEYS = {"model", "data", "transforms", "classes", "config", "train", "out"}


def fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print ``rows`` as an aligned plain-text table."""
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@app.command("list")
def list_cmd() -> None:
    """List models (family and capabilities) and datasets.

    Example: dgm list
    """
    from dgm.data import list_datasets
    from dgm.registry import list_models

    rows = [
        {
            **m,
            "data": ",".join(m["data"]),
            "latent": "yes" if m["latent"] else "",
            "conditional": "yes" if m["conditional"] else "",
        }
        for m in list_models()
    ]
    typer.echo("Models")
    print_table(rows, ["name", "family", "density", "latent", "conditional", "data", "summary"])
    typer.echo("\nDatasets")
    datasets = [{**d, "analytic density": "yes" if d["density"] == "exact" else ""} for d in list_datasets()]
    print_table(datasets, ["spec", "analytic density", "summary"])


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
    """``--set`` pairs: model-config fields, and ``train.FIELD`` training fields."""
    from dgm.config import parse_assignments

    model_sets, train_sets = {}, {}
    for key, value in parse_assignments(pairs).items():
        if key.startswith("train."):
            train_sets[key.removeprefix("train.")] = value
        else:
            model_sets[key] = value
    return model_sets, train_sets


@app.command()
def train(
    model: Annotated[
        str | None, typer.Argument(help="Model name (see 'dgm list'); taken from the run when resuming.")
    ] = None,
    data: Annotated[
        str | None,
        typer.Option(
            "--data", "-d", help="Dataset: mnist5k, digits, toy2d:gmm8, npz:PATH, idx:PATH, folder:PATH, csv:PATH."
        ),
    ] = None,
    transform: Annotated[
        list[str] | None,
        typer.Option(
            "--transform",
            "-t",
            help="Data transform, repeatable, applied in order: binarize, binarize:stochastic, dequantize, scale, scale:-1,1, logit.",
        ),
    ] = None,
    classes: Annotated[str | None, typer.Option(help="Keep only these labels, e.g. 0-8 or 0,2,4.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Budget in epochs (default 20 when no budget is given).")] = None,
    steps: Annotated[int | None, typer.Option(help="Budget in optimizer steps.")] = None,
    minutes: Annotated[float | None, typer.Option(help="Wall-clock budget in minutes.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Batch size (default 128).")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate of AdamW (default 1e-3).")] = None,
    weight_decay: Annotated[float | None, typer.Option(help="Decoupled weight decay (default 0).")] = None,
    grad_clip: Annotated[float | None, typer.Option(help="Clip gradients to this norm.")] = None,
    patience: Annotated[
        int | None, typer.Option(help="Early stopping: stop after this many epochs without a lower validation loss.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Model config field, repeatable: --set hidden=512,512; training fields as train.FIELD=VALUE."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="YAML file with keys model, data, transforms, classes, config (model fields), train (training fields), out.",
        ),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="Run directory (default runs/MODEL-DATA).")] = None,
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    seed: Annotated[int | None, typer.Option(help="Random seed (default 0).")] = None,
    accelerator: Annotated[str | None, typer.Option(help="cpu, gpu, mps or auto (default auto).")] = None,
    devices: Annotated[int | None, typer.Option(help="Processes/GPUs per node; more than 1 trains with DDP.")] = None,
    num_nodes: Annotated[int | None, typer.Option(help="Number of nodes for multi-node DDP.")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(help="Also save a checkpoint every N steps.")] = None,
) -> None:
    """Train a model and write a run directory (config, weights, metrics, samples, logs, checkpoints).

    Example: dgm train made --data mnist5k --transform binarize --minutes 4 --out runs/made
    """
    try:
        run_dir = _train(locals())
    except DgmError as e:
        fail(str(e))
    from dgm.runs import read_metrics

    typer.echo(f"run saved in {run_dir}")
    _print_metrics(read_metrics(run_dir))


def _train(opts: dict[str, Any]) -> Path:
    import torch

    from dgm.config import from_dict, override
    from dgm.data import load_dataset
    from dgm.registry import build_from_dict, get, make_config
    from dgm.runs import load_dataset_of, read_record
    from dgm.train.config import TrainConfig

    file = read_config_file(opts["config"]) if opts["config"] else {}
    out = opts["out"] or (Path(file["out"]) if "out" in file else None)
    model_sets, train_sets = split_sets(opts["set_"] or [])
    train_values = {**file.get("train", {})}
    train_values.update({k: opts[k] for k in TRAIN_KEYS_FROM_OPTIONS if opts.get(k) is not None})

    if opts["resume"]:
        if out is None:
            raise ConfigError("--resume needs --out RUN_DIR, the run to continue")
        record = read_record(out)
        if opts["model"] and opts["model"] != record.model:
            raise ConfigError(f"{out} holds a '{record.model}' run, not '{opts['model']}'")
        train_config = override(from_dict(TrainConfig, {**record.train, **train_values}), train_sets)
        dataset = load_dataset_of(out)
        model = build_from_dict(record.model, record.config)  # its weights come from the checkpoint
    else:
        name = opts["model"] or file.get("model")
        spec = opts["data"] or file.get("data")
        if not name:
            raise ConfigError("name a model: dgm train MODEL --data DATA (see 'dgm list')")
        if not spec:
            raise ConfigError("name the data with --data, e.g. --data mnist5k (see 'dgm list')")
        train_config = override(from_dict(TrainConfig, train_values), train_sets)
        transforms = opts["transform"] if opts["transform"] else file.get("transforms", [])
        classes = opts["classes"] if opts["classes"] is not None else file.get("classes")
        dataset = load_dataset(spec, transforms=transforms, classes=classes)
        config = override(make_config(name, dataset, **file.get("config", {})), model_sets)
        torch.manual_seed(train_config.seed)  # the initial weights follow the run's seed
        model = get(name)(config)
    typer.echo(f"training {model.name} on {dataset.describe()}", err=True)
    from dgm.train.engine import fit  # imports Lightning: only once the input is known to be good

    return fit(model, dataset, train_config, out=out, resume=opts["resume"])


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return " ".join(_format_value(v) for v in value)
    return str(value)


def _spread(entry: dict) -> str:
    """'0.85' for a standard error, 'std 1.9' for a spread; '' when the entry has neither."""
    if isinstance(entry.get("se"), float):
        return f"{entry['se']:.2g}"
    return f"std {entry['std']:.2g}" if isinstance(entry.get("std"), float) else ""


def _print_metrics(metrics: dict[str, Any]) -> None:
    """Print metrics.json entries as a table: name, value, standard error (or spread), unit, meaning."""
    rows = [
        {
            "metric": k,
            "value": _format_value(v.get("value")),
            "±": _spread(v),
            "unit": v.get("unit", ""),
            "what": v.get("what", ""),
        }
        for k, v in metrics.items()
        if isinstance(v, dict)
    ]
    if rows:
        print_table(rows, ["metric", "value", "±", "unit", "what"])


@app.command()
def sample(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    n: Annotated[int, typer.Option("-n", help="Number of samples.")] = 64,
    out: Annotated[
        Path, typer.Option(help="Output file: .png (picture) or .npy (array in the model's data space).")
    ] = Path("samples.png"),
    seed: Annotated[int | None, typer.Option(help="Random seed; the same seed gives the same samples.")] = 0,
    cond: Annotated[
        int | None, typer.Option(help="Class label for conditional models (default: cycle through classes).")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Draw samples from a trained run.

    Example: dgm sample runs/made -n 64 --out made.png --seed 1
    """
    import numpy as np
    import torch

    from dgm.io import atomic_write
    from dgm.runs import load_dataset_of, load_model
    from dgm.sampling import draw_samples
    from dgm.viz.samples import save_samples_figure

    try:
        if n < 1:
            raise ConfigError(f"-n must be at least 1, got {n}")
        if out.suffix not in (".png", ".npy", ".pdf", ".svg"):
            raise ConfigError(f"--out must end in .png, .pdf, .svg or .npy, got {out.name!r}")
        model = load_model(run, device=device)
        labels = None if cond is None else torch.full((n,), cond)
        if out.suffix == ".npy":
            samples = draw_samples(model, n, seed, cond=labels).numpy()
            atomic_write(out, lambda tmp: np.save(open(tmp, "wb"), samples))
        else:
            if labels is not None:
                raise ConfigError("--cond is supported with --out FILE.npy; pictures show every class")
            save_samples_figure(model, load_dataset_of(run), out, n=n, seed=seed)
    except DgmError as e:
        fail(str(e))
    typer.echo(f"{n} samples written to {out}")


@app.command("eval")
def eval_cmd(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    metrics: Annotated[
        str,
        typer.Option(
            "--metrics",
            "-m",
            help="Comma-separated metric groups, or 'all' for every one that applies: "
            "nll, fd, kid, prdc, classes, kl, mmd, modes, anomaly, probe, speed.",
        ),
    ] = "all",
    n: Annotated[
        int | None,
        typer.Option(
            "-n", help="Model samples for sample metrics (default: split size for images, 2000 for toy data)."
        ),
    ] = None,
    k: Annotated[int, typer.Option("-k", help="Importance samples for the bound of latent-variable models.")] = 100,
    split: Annotated[str, typer.Option(help="Data split: test or val.")] = "test",
    seed: Annotated[int, typer.Option(help="Seed of the samples and of the dequantization noise.")] = 0,
    features: Annotated[
        str | None,
        typer.Option(
            help="Image feature space: digits28, digits8 or random-conv (default: a digit classifier for "
            "28x28 and 8x8 grey images, random-conv for others; use random-conv for images that are not digits)."
        ),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
) -> None:
    """Evaluate a run: compute metrics, merge them into its metrics.json and print them.

    Metric groups: nll (NLL and bits/dim, or ELBO and importance-weighted bounds), fd / kid / prdc /
    classes (sample quality in the features of a shipped digit classifier), kl / mmd / modes (toy
    2-D data against the analytic target), anomaly (AUROC against out-of-distribution sets), probe
    (linear probe on latents), speed (sampling time).

    Example: dgm eval runs/made --metrics nll,fd,prdc -n 1000
    """
    from dgm.eval import GROUPS, evaluate, parse_metrics
    from dgm.runs import load_dataset_of, load_model, write_metrics

    try:
        if split not in ("test", "val"):
            raise ConfigError(f"--split must be test or val, got {split!r}")
        if n is not None and n < 2:
            raise ConfigError(f"-n must be at least 2, got {n}")
        if k < 1:
            raise ConfigError(f"-k must be at least 1, got {k}")
        groups = parse_metrics(metrics)
        model = load_model(run, device=device)
        dataset = load_dataset_of(run)
        found = evaluate(
            model,
            dataset,
            groups,
            n=n,
            split=split,
            seed=seed,
            k=k,
            features=features,
            log=lambda m: typer.echo(f"... {m}", err=True),
        )
        if not found:
            raise DgmError(f"no metric of {', '.join(GROUPS)} applies to model '{model.name}' on {dataset.spec}")
        write_metrics(run, found)
    except DgmError as e:
        fail(str(e))
    _print_metrics(found)


@app.command()
def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run directories.")],
    md: Annotated[Path | None, typer.Option(help="Also write the table as Markdown to this file.")] = None,
    csv: Annotated[
        Path | None, typer.Option(help="Also write the table as CSV (unformatted numbers) to this file.")
    ] = None,
    evaluate_missing: Annotated[
        bool,
        typer.Option(
            "--eval/--no-eval",
            help="Compute the compared metrics a run lacks (NLL, FD, precision/recall, sampling time) and save them.",
        ),
    ] = True,
    seed: Annotated[int, typer.Option(help="Seed of the samples when metrics are computed.")] = 0,
) -> None:
    """Compare runs of any family in one table: family, parameters, training time, NLL or bound,
    FD in the digit feature space, precision/recall and sampling time per example.

    Example: dgm compare runs/made runs/fvsbn --md compare.md --csv compare.csv
    """
    from dgm.eval.compare import COLUMNS, compare_row, csv_table, markdown_table, missing_groups
    from dgm.io import write_text
    from dgm.runs import load_dataset_of, load_model, read_record, write_metrics

    try:
        if evaluate_missing:
            from dgm.eval import evaluate

            for run in runs:
                missing = missing_groups(run)
                if missing:
                    typer.echo(f"... evaluating {', '.join(missing)} for {run}", err=True)
                    write_metrics(run, evaluate(load_model(run), load_dataset_of(run), missing, seed=seed))
        rows = [compare_row(run) for run in runs]
        datas = {(r.data["spec"], tuple(r.data.get("transforms", ()))) for r in map(read_record, runs)}
        table = markdown_table(rows)
        if md:
            write_text(md, table)
        if csv:
            write_text(csv, csv_table(rows))
    except DgmError as e:
        fail(str(e))
    typer.echo(table, nl=False)
    if len(datas) > 1:
        typer.echo("note: these runs use different data; their numbers are not comparable across data.", err=True)
    legend = "; ".join(f"{header}: {meaning}" for _, header, meaning in COLUMNS if header and header != "run")
    typer.echo(f"\n{legend}")


def main() -> None:
    """Entry point of the ``dgm`` console script."""
    app(prog_name="dgm")


if __name__ == "__main__":
    sys.exit(main())
