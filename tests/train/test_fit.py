"""End-to-end training through the engine: run directories, beating a baseline, resume, DDP."""

from __future__ import annotations

import os
import stat

import pytest
import torch

import dgm
from dgm.errors import ConfigError, RunError
from dgm.runs import read_metrics, read_record
from dgm.train import TrainConfig, fit
from tests.conftest import TRAIN_SMALL_MADE, run_cli

FAST = dict(batch_size=64, lr=3e-3, accelerator="cpu", eval_samples=16)


def test_a_run_directory_is_complete_and_loads(tmp_path, digits_binary):
    model = dgm.build("made", data=digits_binary, hidden=(32,))
    run = fit(model, digits_binary, TrainConfig(steps=30, **FAST), out=tmp_path / "run")
    for name in ("config.json", "model.safetensors", "metrics.json", "samples.png"):
        assert (run / name).is_file(), name
    assert (run / "logs" / "csv" / "metrics.csv").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file()
    record = read_record(run)
    assert record.model == "made" and record.data == {"spec": "digits", "transforms": ["binarize"], "classes": None}
    assert record.versions["torch"] == torch.__version__
    loaded = dgm.load(run)
    x, _ = digits_binary.transformed("test")
    assert torch.allclose(loaded.log_prob(x[:50]), model.eval().log_prob(x[:50]), atol=1e-5)
    metrics = read_metrics(run)
    assert metrics["steps"]["value"] == 30
    assert metrics["nll"]["unit"] == "nats/example" and metrics["nll"]["n"] == 447


def test_made_beats_the_independent_baseline_on_digits(tmp_path, digits_binary):
    nll = {}
    for name, overrides in (("independent", {}), ("made", {"hidden": (64,)})):
        model = dgm.build(name, data=digits_binary, **overrides)
        run = fit(model, digits_binary, TrainConfig(epochs=12, **FAST), out=tmp_path / name)
        nll[name] = read_metrics(run)["nll"]["value"]
    # Binarized 8x8 digits: pixels are strongly correlated, so the chain rule must win clearly.
    assert nll["made"] < nll["independent"] - 5, nll


def test_refuses_to_overwrite_a_run_and_a_mismatched_model(tmp_path, digits_binary):
    model = dgm.build("independent", data=digits_binary)
    fit(model, digits_binary, TrainConfig(steps=2, **FAST), out=tmp_path / "run")
    with pytest.raises(RunError, match="already holds a run; pass --resume to continue it, --overwrite"):
        fit(model, digits_binary, TrainConfig(steps=2, **FAST), out=tmp_path / "run")
    with pytest.raises(RunError, match="nothing to resume"):
        fit(model, digits_binary, TrainConfig(steps=2, **FAST), out=tmp_path / "empty", resume=True)
    other = dgm.load_dataset("digits", transforms=["binarize"], classes="0-4")
    wrong = dgm.build("independent", data=dgm.DataInfo((1, 4, 4), "binary", 2))
    with pytest.raises(ConfigError, match="built for"):
        fit(wrong, other, TrainConfig(steps=2, **FAST), out=tmp_path / "x")


@pytest.mark.slow
def test_two_process_ddp_run_loads_like_any_other(tmp_path):
    out = tmp_path / "ddp"
    proc = run_cli(*TRAIN_SMALL_MADE, "--set", "hidden=16", "--steps", "6", "--devices", "2", "--out", str(out))
    assert proc.stdout.count("run saved in") == 1  # the worker process prints nothing
    record = read_record(out)
    assert record.train["devices"] == 2
    model = dgm.load(out)
    assert read_metrics(out)["steps"]["value"] == 6
    assert torch.isfinite(model.log_prob(torch.ones(3, 1, 8, 8))).all()
    assert not (tmp_path / "runs").exists()  # the worker process used the same run directory


def test_same_seed_same_weights_and_a_wall_clock_budget_stops_training(tmp_path, digits_binary):
    states = []
    for k in range(2):
        torch.manual_seed(0)  # the initial weights; fit seeds everything after
        model = dgm.build("made", data=digits_binary, hidden=(16,))
        fit(model, digits_binary, TrainConfig(steps=5, seed=3, **FAST), out=tmp_path / f"s{k}")
        states.append(model.state_dict())
    assert all(torch.equal(states[0][k], states[1][k]) for k in states[0])

    model = dgm.build("independent", data=digits_binary)
    run = fit(model, digits_binary, TrainConfig(minutes=0.02, **FAST), out=tmp_path / "timed")
    steps_per_epoch = -(-1000 // FAST["batch_size"])
    assert 0 < read_metrics(run)["steps"]["value"] < 10_000 * steps_per_epoch  # stopped by the clock


def test_a_run_killed_while_writing_its_results_is_finished_by_resume(tmp_path, digits_binary):
    model = dgm.build("made", data=digits_binary, hidden=(16,))
    config = TrainConfig(steps=12, **FAST)
    run = fit(model, digits_binary, config, out=tmp_path / "run")
    with pytest.raises(RunError, match="has trained 12 of 12 steps, its whole budget"):
        fit(model, digits_binary, config, out=run, resume=True)
    for name in ("model.safetensors", "metrics.json", "samples.png"):  # as if killed after the last step
        (run / name).unlink()
    fit(dgm.build("made", data=digits_binary, hidden=(16,)), digits_binary, config, out=run, resume=True)
    assert read_metrics(run)["steps"]["value"] == 12 and (run / "samples.png").is_file()
    assert stat.S_IMODE(os.stat(run / "model.safetensors").st_mode) == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_a_step_budget_shorter_than_an_epoch_still_validates_for_early_stopping(tmp_path, digits_binary):
    model = dgm.build("made", data=digits_binary, hidden=(16,))
    run = fit(model, digits_binary, TrainConfig(steps=5, patience=2, **FAST), out=tmp_path / "run")
    metrics = read_metrics(run)
    assert metrics["steps"]["value"] == 5
    assert metrics["best_val_loss"]["what"] == "lowest val/loss, at step 5"
