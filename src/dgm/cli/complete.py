"""``dgm complete``: draw the rest of partly given examples with an autoregressive run.

Inputs are examples of the run's test split (default), an image file, a ``.npy`` array in the
data's raw units, a text prompt (``--prompt`` or a ``.txt`` file) or a ``.wav`` clip. Images give
a picture (originals, given part, K completions each); text gives a text file and audio a WAV
file with a picture of the waveforms beside it (same name, ``.png``). The logic is in :mod:`dgm.apps.complete`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dgm.cli.common import PICTURE_SUFFIXES, check_seed, command, fail
from dgm.errors import ConfigError, DataError, DgmError

IMAGE_FILES = (".png", ".jpg", ".jpeg")


def _output_path(out: Path | None, run: Path, info) -> Path:
    """``out`` or RUN/completions.{png,txt,wav}, checked against the kind of data."""
    suffix = ".txt" if info.vocab is not None else ".wav" if info.sample_rate is not None else ".png"
    path = run / f"completions{suffix}" if out is None else out
    allowed = (suffix,) if suffix != ".png" else PICTURE_SUFFIXES
    if path.is_dir():
        raise ConfigError(
            f"--out {str(path)!r} is a folder; give a file name such as {path / ('completions' + suffix)}"
        )
    if path.suffix not in allowed:
        raise ConfigError(f"--out must end in {' or '.join(allowed)} for this run's data, got {path.name!r}")
    return path


def _file_input(path: Path, dataset):
    """Raw examples (B, *raw shape) from an image file or a .npy array."""
    import numpy as np
    import torch

    raw = dataset.raw_info
    if not path.is_file():
        raise DataError(f"--input {str(path)!r} is not a file")
    if path.suffix.lower() == ".npy":
        try:
            array = np.load(path, allow_pickle=False)
        except Exception as err:  # numpy raises several types for a bad file
            raise DataError(f"cannot read {path} as .npy ({type(err).__name__})") from None
        x = torch.as_tensor(np.asarray(array, dtype=np.float32))
        if tuple(x.shape) == tuple(raw.shape):
            x = x.unsqueeze(0)
    elif path.suffix.lower() in IMAGE_FILES:
        if not raw.is_image:
            raise DataError(f"--input {path.name} is an image but this run's data is {raw.describe()}")
        x = _read_image(path, raw).unsqueeze(0)
    else:
        raise ConfigError(f"--input must be an image ({', '.join(IMAGE_FILES)}) or a .npy array, got {path.name!r}")
    if tuple(x.shape[1:]) != tuple(raw.shape):
        raise DataError(f"--input {path.name} holds examples of shape {tuple(x.shape[1:])}; this run takes {raw.shape}")
    return x


def _read_image(path: Path, raw):
    """An image file as one raw example (C, H, W) at the data's size and levels."""
    import numpy as np
    import torch

    from dgm.data.folder import _open

    c, h, w = raw.shape
    image = _open(path).convert("L" if c == 1 else "RGB")
    if image.size != (w, h):
        image = image.resize((w, h))
    pixels = np.asarray(image, dtype=np.float32).reshape(h, w, -1).transpose(2, 0, 1)
    levels = raw.levels or 256
    return torch.as_tensor(np.round(pixels / 255.0 * (levels - 1)))


@command()
def complete(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="Run directory of an autoregressive model.")],
    n: Annotated[int, typer.Option("-n", metavar="K", help="Completions per input.")] = 4,
    input: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Input: an image, a .npy array (raw units), a .txt prompt or a .wav clip."),
    ] = None,
    prompt: Annotated[str | None, typer.Option(metavar="TEXT", help="Text prompt (runs on text: data).")] = None,
    keep: Annotated[
        str | None,
        typer.Option(metavar="PART", help="Given part: top-half, top:R, left-half (images); first-half, first:N."),
    ] = None,
    examples: Annotated[int, typer.Option(metavar="N", help="Test examples completed when no --input.")] = 8,
    split: Annotated[str, typer.Option(metavar="SPLIT", help="Split the examples come from.")] = "test",
    cond: Annotated[int | None, typer.Option(metavar="LABEL", help="Class label for a conditional model.")] = None,
    temperature: Annotated[float, typer.Option(metavar="T", help="Sampling temperature (1: the model).")] = 1.0,
    seed: Annotated[int, typer.Option(metavar="S", help="Seed of the examples picked and of the draws.")] = 0,
    out: Annotated[Path | None, typer.Option(metavar="FILE", help="Output file (default RUN/completions.*).")] = None,
    device: Annotated[str, typer.Option(metavar="DEVICE", help="cpu, cuda, cuda:N or mps.")] = "cpu",
) -> None:
    """Draw the rest of partly given examples with an autoregressive run.

    Example: dgm complete runs/gated --keep top-half -n 4
    Example: dgm complete runs/shakespeare --prompt "ROMEO:" -n 3
    """
    from dgm.apps import complete as apps
    from dgm.hardware import check_device
    from dgm.runs import load_dataset_of, load_model

    try:
        check_seed(seed)
        if examples < 1:
            raise ConfigError(f"--examples must be at least 1, got {examples}")
        model = load_model(run, device=check_device(device))
        apps.require_autoregressive(model)
        info = model.config.data
        # a prompt needs only the model (text and audio runs keep their vocabulary and rate);
        # examples, image files and pictures need the run's data
        prompted = prompt is not None or (input is not None and input.suffix.lower() in (".txt", ".wav"))
        dataset = None if prompted and info.is_sequence else load_dataset_of(run)
        path = _output_path(out, run, info)
        x, labels, mask = _inputs(model, dataset, input, prompt, keep, examples, split, cond, seed)
        done = apps.complete(model, x, mask, k=n, cond=labels, seed=seed, temperature=temperature)
        _write(done, dataset, info, path, model.name)
    except DgmError as e:
        fail(str(e))
    if not done.exact:
        typer.echo("note: the given part does not come first in the model's ordering; see 'dgm complete --help'")
    typer.echo(f"completions written to {path}")


def _inputs(model, dataset, input, prompt, keep, examples, split, cond, seed):
    """Model-space inputs (B, *shape), their labels (conditional models) and the keep mask."""
    import torch

    from dgm.apps import complete as apps
    from dgm.apps.latent import pick

    info = model.config.data
    if prompt is not None or (input is not None and input.suffix.lower() in (".txt", ".wav")):
        if keep is not None:
            raise ConfigError("--keep does not apply to a prompt: the prompt is what is given")
        x, mask = apps.prefix_input(_prompt_levels(info, input, prompt), info)
        labels = None
    elif input is not None:
        raw = _file_input(input, dataset)
        x, _ = dataset.apply_transforms(raw, torch.Generator().manual_seed(seed))
        mask = apps.keep_mask(keep or apps.default_keep(info), info)
        labels = None
    else:
        data = dataset.split(split)
        index = pick(data.n, examples, seed)
        x, _ = dataset.apply_transforms(data.x[index], torch.Generator().manual_seed(seed))
        labels = None if data.y is None else data.y[index]
        mask = apps.keep_mask(keep or apps.default_keep(info), info)
    if model.conditional:
        if cond is not None:
            labels = torch.full((x.shape[0],), cond)
        if labels is None:
            raise ConfigError(f"conditional model '{model.name}' needs --cond LABEL for these inputs")
        model.check_cond(labels, x.shape[0])
    elif cond is not None:
        raise ConfigError(f"model '{model.name}' is not conditional; drop --cond")
    else:
        labels = None
    return x, labels, mask


def _prompt_levels(info, input: Path | None, prompt: str | None):
    """The levels of a text prompt (--prompt or a .txt file) or of a .wav clip."""
    from dgm.apps.complete import prompt_levels

    if prompt is not None and input is not None:
        raise ConfigError("give --prompt or --input, not both")
    if input is not None and input.suffix.lower() == ".wav":
        if info.sample_rate is None:
            raise DataError(f"--input {input.name} is audio but this run's data is {info.describe()}")
        from dgm.data.audio import read_clip

        return read_clip(input, info.sample_rate)
    if info.vocab is None:
        raise DataError(f"a text prompt needs a run on text: data; this run's data is {info.describe()}")
    if input is not None:
        try:
            prompt = input.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise DataError(f"cannot read {input} as UTF-8 text ({type(err).__name__})") from None
    return prompt_levels(prompt or "", info.vocab)


def _write(done, dataset, info, path: Path, name: str) -> None:
    """The picture, text or audio of the completions."""
    if info.vocab is not None:
        from dgm.data.sequence_io import write_text_completions

        write_text_completions(path, done, info.vocab)
    elif info.sample_rate is not None:
        from dgm.data.sequence_io import write_wav_completions
        from dgm.viz.sequence import plot_waveforms

        write_wav_completions(path, done, info.sample_rate)
        title = f"{name} completions (each input's K completions in turn)"
        plot_waveforms(done.samples.flatten(0, 1), info.sample_rate, path.with_suffix(".png"), title=title)
    else:
        from dgm.viz.completion import plot_completions

        title = f"{name} completions on {dataset.spec}" + ("" if done.exact else " (given part not first in order)")
        plot_completions(done, dataset, path, title=title)
