"""training.png: the panels chosen from the logged names, the smoothing, reading a log that a
resumed run appended to, and the picture from a run's log through ``dgm plot --what training``."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from dgm.runs import RunRecord, write_record
from dgm.viz.training import (
    Panel,
    log_path,
    plot_training,
    read_log,
    same_as_loss,
    series_names,
    smooth,
    training_panels,
)
from tests.conftest import assert_one_line_error, invoke

PNG = b"\x89PNG\r\n\x1a\n"
# The columns a GAN's run logs, as Lightning writes them (step values with _step, epoch means with _epoch).
GAN_COLUMNS = [
    "epoch",
    "step",
    "train/discriminator/loss_step",
    "train/discriminator/loss_epoch",
    "train/discriminator/d_real_step",
    "train/discriminator/d_real_epoch",
    "train/discriminator/d_fake_step",
    "train/discriminator/d_fake_epoch",
    "train/discriminator/grad_norm",
    "train/generator/loss_step",
    "train/generator/loss_epoch",
    "train/generator/grad_norm",
    "train/skipped_steps",
    "val/loss",
    "monitor/modes_covered",
    "monitor/hq_fraction",
]


def test_series_prefer_the_values_of_each_step_to_the_epoch_means():
    names = series_names(["epoch", "step", "train/loss_step", "train/loss_epoch", "train/kl_epoch", "val/loss"])
    assert names == {"train/loss": "train/loss_step", "train/kl": "train/kl_epoch", "val/loss": "val/loss"}
    assert series_names(["train/loss_epoch", "train/loss_step"]) == {"train/loss": "train/loss_step"}


def test_a_gans_log_gets_loss_discriminator_terms_gradient_norms_skips_and_monitor_panels():
    panels = training_panels(series_names(GAN_COLUMNS))
    assert panels == [
        Panel("loss", ("train/discriminator/loss", "train/generator/loss", "val/loss")),
        Panel("discriminator terms", ("train/discriminator/d_fake", "train/discriminator/d_real")),
        Panel(
            "gradient norm (log scale)",
            ("train/discriminator/grad_norm", "train/generator/grad_norm"),
            log_scale=True,
        ),
        Panel("steps skipped (non-finite gradients), in all", ("train/skipped_steps",)),
        Panel("monitor: fraction of high-quality samples", ("monitor/hq_fraction",)),
        Panel("monitor: modes covered", ("monitor/modes_covered",)),
    ]


def test_a_one_part_model_gets_one_terms_panel_and_panels_without_data_are_left_out():
    names = ["train/loss", "train/recon", "train/kl", "train/grad_norm", "val/loss", "val/recon", "lr-AdamW"]
    assert [(p.title, p.series) for p in training_panels(names)] == [
        ("loss", ("train/loss", "val/loss")),
        ("training terms", ("train/kl", "train/recon")),
        ("gradient norm (log scale)", ("train/grad_norm",)),
    ]
    assert training_panels(["val/loss"]) == [Panel("loss", ("val/loss",))]
    assert training_panels(["epoch", "lr-AdamW"]) == []
    shares = [f"monitor/class_share/{c}" for c in range(10)] + ["monitor/class_share/largest"]
    (panel,) = training_panels(shares)
    assert panel.series[0] == "monitor/class_share/largest" and set(panel.series) == set(shares)


def test_smoothing_keeps_a_constant_reduces_noise_and_span_one_changes_nothing():
    rng = np.random.default_rng(0)
    assert np.allclose(smooth(np.full(50, 3.5), 10), 3.5)
    noisy = 1.0 + rng.normal(size=2000)
    assert np.array_equal(smooth(noisy, 1), noisy)
    smoothed = smooth(noisy, 20)
    assert smoothed[0] == pytest.approx(noisy[0])  # debiased: no pull towards 0 at the start
    assert smoothed[100:].std() < 0.3 * noisy.std() and abs(smoothed[100:].mean() - 1.0) < 0.1


def write_log(run, rows: list[dict]) -> None:
    columns = sorted({key for row in rows for key in row})
    path = log_path(run)
    path.parent.mkdir(parents=True)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def test_a_step_logged_twice_keeps_the_resumed_sessions_value(tmp_path):
    write_log(
        tmp_path,
        [
            {"step": 9, "train/loss_step": 3.0, "val/loss": ""},
            {"step": 19, "train/loss_step": 2.0},  # the killed session, after its last checkpoint
            {"step": 19, "train/loss_step": 2.5},  # the resumed one
            {"step": 14, "val/loss": 2.8, "epoch": 1},
            {"step": 29, "train/never": ""},
        ],
    )
    log = read_log(log_path(tmp_path))
    assert set(log) == {"train/loss_step", "val/loss"}
    steps, values = log["train/loss_step"]
    assert steps.tolist() == [9, 19] and values.tolist() == [3.0, 2.5]


def test_a_term_that_repeats_the_loss_gets_no_panel():
    steps = np.arange(5)
    log = {
        "train/loss_step": (steps, steps * 1.0),
        "train/nll_step": (steps, steps * 1.0),
        "train/kl_step": (steps, -steps * 1.0),
    }
    names = series_names(log)
    assert same_as_loss("train/nll", names, log) and not same_as_loss("train/kl", names, log)
    assert not same_as_loss("train/loss", names, log)


@pytest.fixture
def logged_run(tmp_path):
    """A run directory with config.json and a GAN-like log (no weights: as if interrupted early)."""
    run = tmp_path / "run"
    run.mkdir()
    write_record(run, RunRecord(model="gan", config={}, data={"spec": "toy2d:gmm8"}))
    rng = np.random.default_rng(0)
    rows = []
    for step in range(9, 400, 10):
        rows.append(
            {
                "step": step,
                "train/discriminator/loss_step": 1.3 + 0.1 * rng.normal(),
                "train/generator/loss_step": 0.8 + 0.1 * rng.normal(),
                "train/discriminator/d_real_step": 0.6,
                "train/discriminator/d_fake_step": 0.4,
                "train/discriminator/grad_norm": abs(rng.normal()) + 0.1,
            }
        )
        if (step + 1) % 100 == 0:
            rows.append({"step": step, "monitor/modes_covered": 8.0, "monitor/hq_fraction": 0.9})
    write_log(run, rows)
    return run


def test_dgm_plot_draws_the_training_curves_of_any_run(logged_run, tmp_path):
    result = invoke(["plot", str(logged_run), "--what", "training"])
    assert result.exit_code == 0, result.output
    assert (logged_run / "training.png").read_bytes()[:8] == PNG
    assert f"training picture written to {logged_run / 'training.png'}" in result.stdout
    out = plot_training(logged_run, tmp_path / "curves.svg")
    assert out.read_text().lstrip().startswith("<?xml")


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--what", "training", "-n", "3"], "-n: this option is for --what forward and trajectory"),
        (["--what", "training", "--t", "5", "--steps", "2"], "--t, --steps: these options are for --what forward"),
        (["--what", "noise"], "--what must be training, forward or trajectory, got 'noise'"),
        (["--what", "training", "--out", "curves.jpg"], "--out must end in .png"),
    ],
)
def test_bad_training_plot_options_are_one_line_errors(logged_run, args, needle):
    assert_one_line_error(invoke(["plot", str(logged_run), *args]), needle)
    assert not (logged_run / "training.png").exists()


def test_a_run_without_a_log_or_without_a_run_is_a_one_line_error(logged_run, tmp_path):
    log_path(logged_run).unlink()
    assert_one_line_error(invoke(["plot", str(logged_run), "--what", "training"]), "no training log at")
    assert_one_line_error(invoke(["plot", str(tmp_path / "nowhere"), "--what", "training"]), "does not exist")
