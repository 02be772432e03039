"""``dgm plot``: pictures of a run: its training curves, and what a diffusion run does step by step.

- ``--what training`` (any run, finished or not): the losses, training terms, gradient norms and
  monitor values of its logs (:mod:`dgm.viz.training`), the ``training.png`` a run draws at its end;
- ``--what forward`` (diffusion runs): test examples noised to chosen timesteps t (one row per example);
- ``--what trajectory`` (diffusion runs): a sampler run, x_t and the predicted x_0 at chosen steps.

Images give grids, 2-D points scatter plots of the point cloud at each t. The logic is in
:mod:`dgm.apps.denoising`, the pictures in :mod:`dgm.viz.diffusion`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dgm.cli.common import (
    EtaOption,
    GuidanceOption,
    SamplerOption,
    StepsOption,
    check_seed,
    command,
    fail,
    sampling_options,
)
from dgm.cli.latent import Device, Seed, Split, check_count, out_option, picture_path
from dgm.errors import ConfigError, DgmError

WHATS = ("training", "forward", "trajectory")
DEFAULT_EXAMPLES = {"forward": 8, "trajectory": 4}  # images; 2-D points: POINTS
POINTS = 2000


@command()
def plot(
    run: Annotated[
        Path,
        typer.Argument(
            metavar="RUN",
            help="Run directory: of any model for --what training, of a diffusion model (ddpm) otherwise.",
        ),
    ],
    what: Annotated[
        str,
        typer.Option(
            metavar="WHAT",
            help="training (the logged losses, gradient norms and monitor values of any run), forward (noising of "
            "test examples) or trajectory (x_t and predicted x_0 of a sampler run); of the other options only --out "
            "applies to training.",
        ),
    ],
    t: Annotated[
        str | None,
        typer.Option(
            "--t",
            metavar="LIST",
            help="Comma-separated timesteps in 0..T-1 (default 0, T/20, T/10, T/4, T/2, T-1: 0,50,100,250,500,999 "
            "for T = 1000); a trajectory shows the sampler's nearest steps.",
        ),
    ] = None,
    sampler: SamplerOption = None,
    steps: StepsOption = None,
    eta: EtaOption = None,
    guidance: GuidanceOption = None,
    n: Annotated[
        int | None,
        typer.Option(
            "-n", metavar="N", help=f"Images shown (default 8 forward, 4 trajectory) or 2-D points (default {POINTS})."
        ),
    ] = None,
    split: Split = "test",
    out: out_option("training.png, forward.png or trajectory.png") = None,
    seed: Seed = 0,
    device: Device = "cpu",
) -> None:
    """Picture a run: the training curves of any run, or for a diffusion run the forward
    noising of test examples or the denoising trajectory of a sampler run.

    Example: dgm plot runs/gan --what training

    Example: dgm plot runs/ddpm --what forward --t 0,50,100,250,500,999

    Example: dgm plot runs/ddpm --what trajectory --sampler ddim --steps 50 -n 4
    """
    from dgm.apps import denoising as apps
    from dgm.hardware import check_device
    from dgm.runs import load_dataset_of, load_model
    from dgm.viz import diffusion as viz

    try:
        if what not in WHATS:
            raise ConfigError(f"--what must be {', '.join(WHATS[:-1])} or {WHATS[-1]}, got {what!r}")
        if what == "training":
            path = _plot_training(run, out, t=t, sampler=sampler, steps=steps, eta=eta, guidance=guidance, n=n)
            typer.echo(f"training picture written to {path}")
            return
        check_count(n, "-n")
        check_count(steps, "--steps")
        check_seed(seed)
        given = [f"--{k}" for k, v in sampling_options(sampler, steps, eta, guidance).items() if v is not None]
        if what == "forward" and given:
            raise ConfigError(
                f"{', '.join(given)}: sampling options are for --what trajectory; the forward process has none"
            )
        path = picture_path(out, run, f"{what}.png")
        model = load_model(run, device=check_device(device))
        apps.require_diffusion(model, f"dgm plot --what {what}")
        info = model.config.data
        apps.require_pictured(info)
        total = model.schedule.steps
        timesteps = apps.default_timesteps(total) if t is None else apps.parse_timesteps(t, total)
        dataset = load_dataset_of(run)
        count = n if n is not None else DEFAULT_EXAMPLES[what] if info.is_image else POINTS
        name = f"{model.name} on {dataset.spec} (T = {total})"
        if what == "forward":
            from dgm.apps.inpaint import pick_examples

            x, _, _ = pick_examples(dataset, count, seed, split)
            frames = apps.forward_frames(model, x, timesteps, seed=seed)
            viz.plot_forward(frames, dataset, path, title=f"{name}: forward noising of {split} examples")
        else:
            from dgm.sampling import sample_labels

            cond = sample_labels(model, count, dataset.classes)
            options = sampling_options(sampler, steps, eta, guidance)
            done = apps.trajectory(model, count, timesteps, cond=cond, seed=seed, **options)
            moved = t is not None and set(done.timesteps) != set(timesteps)
            note = ", at the sampler's steps nearest to --t" if moved else ""
            used = sampler or model.config.sampler
            title = f"{name}: {len(done.visited)}-step {used} trajectory, x_t (top) and predicted x_0 (bottom){note}"
            viz.plot_trajectory(done, dataset, path, title=title)
    except DgmError as e:
        fail(str(e))
    typer.echo(f"{what} picture written to {path}")


def _plot_training(run: Path, out: Path | None, **unused) -> Path:
    """``training.png`` of ``run`` from its logs (the model is not loaded: any run will do, even
    one interrupted before its weights were saved); the diffusion options given are refused."""
    from dgm.runs import run_path
    from dgm.viz.training import TRAINING, plot_training

    given = [f"-{k}" if k == "n" else f"--{k}" for k, v in unused.items() if v is not None]
    if given:
        raise ConfigError(
            f"{', '.join(given)}: {'this option is' if len(given) == 1 else 'these options are'} for --what forward "
            "and trajectory; --what training draws the run's logged values"
        )
    run_path(run)
    return plot_training(run, picture_path(out, run, TRAINING))
