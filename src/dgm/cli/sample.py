"""``dgm sample``: draw samples from a trained run into a picture or an array."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dgm.cli.common import PICTURE_SUFFIXES, check_seed, command, fail
from dgm.errors import ConfigError, DgmError


@command()
def sample(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="Run directory.")],
    n: Annotated[int, typer.Option("-n", metavar="N", help="Number of samples.")] = 64,
    out: Annotated[
        Path,
        typer.Option(
            metavar="FILE", help="Output file: .png, .pdf or .svg (picture) or .npy (array in the model's data space)."
        ),
    ] = Path("samples.png"),
    seed: Annotated[int, typer.Option(metavar="S", help="Random seed; the same seed gives the same samples.")] = 0,
    cond: Annotated[
        int | None,
        typer.Option(metavar="LABEL", help="Class label for conditional models (default: cycle through classes)."),
    ] = None,
    temperature: Annotated[
        float | None,
        typer.Option(
            metavar="T",
            help="Scale the model's noise by T (flows): T < 1 gives more typical samples, 0 the base's mode.",
        ),
    ] = None,
    device: Annotated[str, typer.Option(metavar="DEVICE", help="cpu, cuda, cuda:N or mps.")] = "cpu",
) -> None:
    """Draw samples from a trained run.

    Example: dgm sample runs/made -n 64 --out made.png --seed 1
    Example: dgm sample runs/glow -n 64 --temperature 0.7 --out glow-t07.png
    """
    import numpy as np
    import torch

    from dgm.hardware import check_device
    from dgm.io import atomic_write
    from dgm.runs import load_dataset_of, load_model
    from dgm.sampling import draw_samples
    from dgm.viz.samples import save_samples_figure

    try:
        if n < 1:
            raise ConfigError(f"-n must be at least 1, got {n}")
        check_seed(seed)
        if out.suffix not in (*PICTURE_SUFFIXES, ".npy"):
            raise ConfigError(f"--out must end in .png, .pdf, .svg or .npy, got {out.name!r}")
        if out.is_dir():
            raise ConfigError(f"--out {str(out)!r} is a folder; give a file name such as {out / 'samples.png'}")
        model = load_model(run, device=check_device(device))
        labels = None if cond is None else torch.full((n,), cond)
        if labels is not None:
            model.check_cond(labels, n)
        if out.suffix == ".npy":
            samples = draw_samples(model, n, seed, cond=labels, temperature=temperature).numpy()
            atomic_write(out, lambda tmp: np.save(open(tmp, "wb"), samples))
        else:
            if labels is not None:
                raise ConfigError("--cond is supported with --out FILE.npy; pictures show every class")
            save_samples_figure(model, load_dataset_of(run), out, n=n, seed=seed, temperature=temperature)
    except DgmError as e:
        fail(str(e))
    typer.echo(f"{n} samples written to {out}")
