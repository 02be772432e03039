"""``dgm inpaint``: fill in a hidden region of test images with a diffusion run (RePaint).

Writes one picture: per test example the original, the masked input and K completions. The
logic is in :mod:`dgm.apps.inpaint`, the picture in :mod:`dgm.viz.inpainting`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dgm.cli.common import GuidanceOption, StepsOption, check_seed, command, fail
from dgm.cli.latent import Device, Seed, Split, check_count, out_option, picture_path
from dgm.errors import ConfigError, DgmError


@command()
def inpaint(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="Run directory of a diffusion model (ddpm).")],
    mask: Annotated[
        str,
        typer.Option(
            metavar="MASK",
            help="Pixels to fill: center (the central half-size square), left-half, random (each pixel with "
            "probability 1/2, from --seed) or FILE.png (the data's size, white where to fill).",
        ),
    ] = "center",
    n: Annotated[int, typer.Option("-n", metavar="K", help="Completions per example.")] = 4,
    examples: Annotated[int, typer.Option(metavar="E", help="Test examples inpainted, one per row.")] = 8,
    steps: StepsOption = None,
    resample: Annotated[
        int, typer.Option(metavar="R", help="RePaint rounds per step (1: no resampling; more: better agreement).")
    ] = 5,
    guidance: GuidanceOption = None,
    cond: Annotated[
        int | None,
        typer.Option(metavar="LABEL", help="Label of a conditional run for every example (default: each one's own)."),
    ] = None,
    split: Split = "test",
    out: out_option("inpaint-MASK.png") = None,
    seed: Seed = 0,
    device: Device = "cpu",
) -> None:
    """Fill in the masked region of test images, RePaint-style (Lugmayr et al. 2022).

    Example: dgm inpaint runs/ddpm --mask center -n 4

    Example: dgm inpaint runs/ddpm --mask my-mask.png --examples 4 --steps 25 --resample 10
    """
    from dgm.apps import inpaint as apps
    from dgm.hardware import check_device
    from dgm.runs import load_dataset_of, load_model
    from dgm.viz.inpainting import plot_inpainting

    try:
        check_count(n, "-n")
        check_count(examples, "--examples")
        check_count(steps, "--steps")
        check_count(resample, "--resample")
        check_seed(seed)
        path = picture_path(out, run, f"inpaint-{apps.mask_name(mask)}.png")
        model = load_model(run, device=check_device(device))
        apps.require_inpainting(model)
        info = model.config.data
        keep = apps.keep_mask(mask, info, seed)
        dataset = load_dataset_of(run)
        x, labels, _ = apps.pick_examples(dataset, examples, seed, split)
        labels = _labels(model, labels, cond, x.shape[0])
        done = apps.inpaint(
            model, x, keep, k=n, cond=labels, seed=seed, steps=steps, resample=resample, guidance=guidance
        )
        title = f"{model.name} inpainting ({apps.mask_name(mask)} mask) on {dataset.spec}"
        plot_inpainting(done, dataset, path, title=title)
    except DgmError as e:
        fail(str(e))
    typer.echo(f"inpainting written to {path}")


def _labels(model, labels, cond: int | None, n: int):
    """The labels a conditional model inpaints with: ``cond`` for all, else the examples' own."""
    import torch

    if not model.conditional:
        if cond is not None:
            raise ConfigError(f"model '{model.name}' is not conditional; drop --cond")
        return None
    if cond is not None:
        labels = torch.full((n,), cond)
    if labels is None:
        raise ConfigError(f"conditional model '{model.name}' needs --cond LABEL for examples without labels")
    model.check_cond(labels, n)
    return labels
