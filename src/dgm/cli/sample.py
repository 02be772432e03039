"""``dgm sample``: draw samples from a trained run into a picture, an array, a text or a WAV file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dgm.cli.common import (
    PICTURE_SUFFIXES,
    EtaOption,
    GuidanceOption,
    SamplerOption,
    StepsOption,
    check_seed,
    command,
    fail,
    sampling_options,
)
from dgm.errors import ConfigError, DgmError

SEQUENCE_SUFFIXES = {".txt": "text", ".wav": "audio"}  # files of samples of text and audio runs


@command()
def sample(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="Run directory.")],
    n: Annotated[int, typer.Option("-n", metavar="N", help="Number of samples.")] = 64,
    out: Annotated[
        Path,
        typer.Option(
            metavar="FILE",
            help="Output file: .png, .pdf or .svg (picture), .npy (array in the model's data space), "
            ".txt (runs on text:) or .wav (runs on wav:).",
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
            help="Sampling temperature (flows, VAEs, autoregressive models): T < 1 gives more typical samples, 0 the mode.",
        ),
    ] = None,
    sampler: SamplerOption = None,
    steps: StepsOption = None,
    eta: EtaOption = None,
    guidance: GuidanceOption = None,
    device: Annotated[str, typer.Option(metavar="DEVICE", help="cpu, cuda, cuda:N or mps.")] = "cpu",
) -> None:
    """Draw samples from a trained run.

    Example: dgm sample runs/made -n 64 --out made.png --seed 1

    Example: dgm sample runs/glow -n 64 --temperature 0.7 --out glow-t07.png

    Example: dgm sample runs/shakespeare -n 8 --out poems.txt

    Example: dgm sample runs/wavenet -n 4 --out tones.wav

    Example: dgm sample runs/ddpm --sampler ddim --steps 20 --out ddim20.png
    """
    import numpy as np
    import torch

    from dgm.hardware import check_device
    from dgm.io import atomic_write
    from dgm.runs import load_dataset_of, load_model
    from dgm.sampling import check_sample_options, draw_samples
    from dgm.viz.samples import save_samples_figure

    try:
        if n < 1:
            raise ConfigError(f"-n must be at least 1, got {n}")
        check_seed(seed)
        if out.suffix not in (*PICTURE_SUFFIXES, ".npy", *SEQUENCE_SUFFIXES):
            raise ConfigError(f"--out must end in .png, .pdf, .svg, .npy, .txt or .wav, got {out.name!r}")
        if out.is_dir():
            raise ConfigError(f"--out {str(out)!r} is a folder; give a file name such as {out / 'samples.png'}")
        model = load_model(run, device=check_device(device))
        options = sampling_options(sampler, steps, eta, guidance)
        check_sample_options(model, options)
        check_sequence_out(out, model.config.data)
        labels = None if cond is None else torch.full((n,), cond)
        if labels is not None:
            model.check_cond(labels, n)
        if model.config.data.is_sequence and out.suffix != ".npy":
            write_sequence(model, out, n, seed, labels, temperature, options)
        elif out.suffix == ".npy":
            samples = draw_samples(model, n, seed, cond=labels, temperature=temperature, options=options).numpy()
            atomic_write(out, lambda tmp: np.save(open(tmp, "wb"), samples))
        else:
            if labels is not None:
                raise ConfigError("--cond is supported with --out FILE.npy; pictures show every class")
            save_samples_figure(
                model, load_dataset_of(run), out, n=n, seed=seed, temperature=temperature, options=options
            )
    except DgmError as e:
        fail(str(e))
    typer.echo(f"{n} samples written to {out}")


def check_sequence_out(out: Path, info) -> None:
    """A ConfigError when ``out`` asks for text of a run not on text, or audio of one not on audio."""
    kind = SEQUENCE_SUFFIXES.get(out.suffix)
    if kind is None:
        return
    if (info.vocab if kind == "text" else info.sample_rate) is None:
        source = "text:PATH" if kind == "text" else "wav:PATH"
        own = ".txt" if info.vocab is not None else ".wav" if info.sample_rate is not None else None
        allowed = ", ".join((*PICTURE_SUFFIXES, ".npy", *([own] if own else [])))
        raise ConfigError(
            f"--out {out.name}: {out.suffix} files hold {kind} samples, of runs on {source} data; this run's data "
            f"is {info.describe()}; use {allowed}"
        )


def write_sequence(model, out: Path, n: int, seed: int, labels, temperature: float | None, options=None) -> None:
    """Text or audio samples of a sequence run as a .txt or .wav file, or as a picture; decoded with
    the vocabulary or sample rate saved in the run, so the data files are not needed."""
    from dgm.sampling import draw_samples, sample_labels
    from dgm.viz.samples import write_sequence_samples
    from dgm.viz.sequence import plot_sequence_samples

    info = model.config.data
    labels = sample_labels(model, n) if labels is None else labels
    samples = draw_samples(model, n, seed, cond=labels, temperature=temperature, options=options)
    if out.suffix in SEQUENCE_SUFFIXES:
        write_sequence_samples(out, samples, info, labels)
    else:
        title = f"{model.name} samples" + ("" if temperature is None else f", T = {temperature:g}")
        plot_sequence_samples(samples, info, out, title=title)
