"""Shared fixtures: small real datasets and a CLI runner in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dgm

torch.set_num_threads(2)

REPO = Path(__file__).resolve().parents[1]


# `dgm train` of a small MADE on binarized digits, on the CPU; tests add budget and --out.
TRAIN_SMALL_MADE = ("train", "made", "--data", "digits", "-t", "binarize", "--accelerator", "cpu", "--batch-size", "32")


def cli_command(*args: str) -> list[str]:
    """The command line that runs ``dgm ARGS`` in a fresh Python process."""
    return [sys.executable, "-m", "dgm.cli", *args]


def cli_env(extra: dict | None = None) -> dict:
    """The environment of a ``dgm`` subprocess: quiet warnings, no inherited run directory."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", **(extra or {})}
    env.pop("DGM_RUN_DIR", None)
    return env


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 300, check: bool = True, env=None):
    """Run ``dgm ARGS`` in a fresh Python process; returns the CompletedProcess."""
    full_env = cli_env(env)
    proc = subprocess.run(
        cli_command(*args),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"dgm {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def invoke(args: list[str]):
    """Run ``dgm ARGS`` in this process (typer's CliRunner); faster than :func:`run_cli`."""
    from typer.testing import CliRunner

    from dgm.cli import app

    return CliRunner().invoke(app, args)


def assert_one_line_error(result, needle: str) -> None:
    """``result`` (of :func:`invoke`) exited with 2 and printed one line, ``error: ...needle...``."""
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle in lines[0], lines[0]


def fit_independent(ds, conditional: bool = False):
    """The MLE of the independent Bernoulli model in closed form: per-pixel frequency of the
    binarized train split (Laplace-smoothed, (count + 1) / (N + 2)), one table per class if
    ``conditional``."""
    model = dgm.build("independent", data=ds, conditional=conditional)
    x, _ = ds.transformed("train")
    y = ds.split("train").y
    with torch.no_grad():
        for row in range(model.table.shape[0]):
            xs = x[y == row] if conditional else x
            model.table[row] = torch.logit((xs.flatten(1).sum(0) + 1) / (len(xs) + 2))
    return model


def bare_trainer(**options):
    """A Lightning Trainer on the CPU that writes nothing (no logger, checkpoints, progress bar or
    summary): one epoch unless ``options`` say otherwise."""
    import lightning as L

    settings = {"max_epochs": 1, "accelerator": "cpu", "logger": False, "enable_checkpointing": False}
    settings.update(enable_progress_bar=False, enable_model_summary=False)
    return L.Trainer(**{**settings, **options})


def write_colour_folder(root: Path, height: int, width: int, per_class: int = 10) -> Path:
    """A user's ``folder:`` of random RGB PNGs in two classes, "red" (red channel at 255) and
    "blue" (blue channel at 255); returns ``root``."""
    from PIL import Image

    g = torch.Generator().manual_seed(0)
    for k, name in enumerate(("red", "blue")):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            pixels = torch.randint(0, 256, (height, width, 3), generator=g).numpy().astype("uint8")
            pixels[..., 2 * k] = 255
            Image.fromarray(pixels).save(root / name / f"{i}.png")
    return root


@pytest.fixture
def one_thread():
    """One torch thread for tests of tiny tensors: a second OpenMP thread costs more than it saves
    there, badly so on a busy machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True)
def _no_inherited_run_dir(monkeypatch):
    monkeypatch.delenv("DGM_RUN_DIR", raising=False)


@pytest.fixture(scope="session")
def digits_binary():
    from dgm.data import load_dataset

    return load_dataset("digits", transforms=["binarize"])
