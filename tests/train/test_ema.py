"""The moving average of the weights (``--ema``): its formula over a recorded trajectory of the
live weights, validation and saved weights on the average, ``keep=best``, interruptions,
resume, skipped steps, and the values and options that reach it."""

from __future__ import annotations

import math
import signal

import lightning as L
import pytest
import torch
from torch import nn

import dgm
from dgm.errors import ConfigError, RunError
from dgm.models.base import Batch, GenerativeModel, as_batch
from dgm.registry import get
from dgm.runs import read_metrics, read_record
from dgm.train import TrainConfig, engine, fit
from dgm.train.checkpoints import PeriodicCheckpoint
from dgm.train.ema import EMAWeights, ema_decay
from dgm.train.engine import TrainingInterrupted
from dgm.train.module import GenerativeTask
from tests.conftest import assert_one_line_error, bare_trainer, invoke
from tests.train.toys import Crash, CrashAt, SometimesNaN, TwoParts

FAST = dict(lr=0.05, batch_size=32, accelerator="cpu", eval_samples=16)
TOY = "toy2d:gmm8?n=256"  # 256 training points: 8 batches of 32 per epoch, 2 000 for validation


@pytest.fixture(scope="module")
def toy():
    return dgm.load_dataset(TOY)


@pytest.fixture
def added(monkeypatch) -> list[L.Callback]:
    """Callbacks the test appends to the engine's own (so they run after them) in every fit."""
    extra: list[L.Callback] = []
    make_trainer = engine.make_trainer

    def with_extra(config, run_dir, callbacks, batches_per_epoch):
        return make_trainer(config, run_dir, [*callbacks, *extra], batches_per_epoch)

    monkeypatch.setattr(engine, "make_trainer", with_extra)
    return extra


def quiet(message: str) -> None:
    pass


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in model.named_parameters()}


def checkpoint(run) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def new_gmm(data):
    torch.manual_seed(0)  # the same initial weights in every run of a test
    return dgm.build("gmm", data=data)


class Trajectory(L.Callback):
    """The live weights at the start and after every training batch, and for every validation:
    the step, the weights it ran on, its val/loss, and the weights after it."""

    def __init__(self):
        self.live: list[dict] = []
        self.validations: list[tuple[int, dict, float, dict]] = []
        self._during: dict = {}

    def on_train_start(self, trainer, module) -> None:
        self.live.append(weights(module.model))

    def on_train_batch_end(self, trainer, module, *args) -> None:
        self.live.append(weights(module.model))

    def on_validation_epoch_end(self, trainer, module) -> None:
        self._during = weights(module.model)

    def on_validation_end(self, trainer, module) -> None:
        loss = float(trainer.callback_metrics["val/loss"])
        self.validations.append((trainer.global_step, self._during, loss, weights(module.model)))


def ema_by_hand(trajectory: list[dict], decay: float) -> dict:
    """The recurrence written out in float64: s_0 = theta_0, s_{n+1} = d_n s_n + (1 - d_n) theta_{n+1},
    d_n = min(decay, (1 + n) / (10 + n))."""
    shadow = {k: v.double() for k, v in trajectory[0].items()}
    for n, theta in enumerate(trajectory[1:]):
        d = min(decay, (1 + n) / (10 + n))
        shadow = {k: d * shadow[k] + (1 - d) * theta[k].double() for k in shadow}
    return shadow


def closed_form(trajectory: list[dict], decay: float) -> dict:
    """A constant decay d over k steps: d^k theta_0 + sum_{i=1..k} (1 - d) d^(k - i) theta_i."""
    k = len(trajectory) - 1
    return {
        name: decay**k * trajectory[0][name].double()
        + sum((1 - decay) * decay ** (k - i) * trajectory[i][name].double() for i in range(1, k + 1))
        for name in trajectory[0]
    }


def assert_close(found: dict, expected: dict, **tol) -> None:
    assert set(found) == set(expected)
    for k in expected:
        torch.testing.assert_close(found[k].double(), expected[k].double(), rtol=1e-5, atol=1e-6, **tol)


def differ(a: dict, b: dict) -> bool:
    return any((a[k].double() - b[k].double()).abs().max() > 1e-4 for k in a)


def val_loss(model: GenerativeModel, dataset) -> float:
    """The mean loss over the validation split, batch by batch as the engine computes it."""
    total, n = 0.0, 0
    with torch.no_grad():
        for batch in dataset.loader("val", 32, shuffle=False):
            x = as_batch(batch).x
            total += float(model.loss(Batch(x, None))["loss"]) * len(x)
            n += len(x)
    return total / n


def test_the_decay_warms_up_to_the_one_configured():
    assert ema_decay(0.999, 0) == pytest.approx(0.1)
    assert ema_decay(0.999, 8) == pytest.approx(0.5)
    assert ema_decay(0.999, 10**6) == 0.999
    assert all(ema_decay(0.1, n) == 0.1 for n in range(100))  # (1 + n) / (10 + n) >= 0.1: no warm-up


@pytest.mark.parametrize("decay", [0.1, 0.9])  # 0.1: no warm-up, the closed form; 0.9: warm-up for 80 steps
def test_the_saved_weights_are_the_moving_average_of_the_trajectory(tmp_path, toy, added, one_thread, decay):
    trajectory = Trajectory()
    added.append(trajectory)
    cfg = TrainConfig(steps=12, ema=decay, keep="last", **FAST)
    run = fit(new_gmm(toy), toy, cfg, out=tmp_path / "run", log=quiet)
    assert len(trajectory.live) == 13
    expected = closed_form(trajectory.live, decay) if decay == 0.1 else ema_by_hand(trajectory.live, decay)
    saved = weights(dgm.load(run))
    assert_close(saved, expected)
    last = trajectory.live[-1]
    assert differ(saved, last)  # the average, not the last weights
    ckpt = checkpoint(run)  # the checkpoint trains on from the live weights, and holds the average beside them
    assert all(torch.equal(ckpt["state_dict"][f"model.{k}"], v) for k, v in last.items())
    state = ckpt["callbacks"]["EMAWeights"]
    assert state["updates"] == 12 and state["decay"] == decay
    assert_close(state["shadow"], expected)
    ema = read_metrics(run)["ema_decay"]
    assert ema["value"] == decay and "moving average" in ema["what"]


def test_validation_runs_on_the_average_and_training_goes_on_from_the_live_weights(tmp_path, toy, added, one_thread):
    trajectory = Trajectory()
    added.append(trajectory)
    cfg = TrainConfig(steps=12, ema=0.9, keep="last", **FAST)
    fit(new_gmm(toy), toy, cfg, out=tmp_path / "run", log=quiet)
    [(step, during, loss, after)] = trajectory.validations  # at the end of the first epoch
    assert step == 8
    assert_close(during, ema_by_hand(trajectory.live[:9], 0.9))
    assert all(torch.equal(after[k], v) for k, v in trajectory.live[8].items())  # swapped back bit for bit

    model = new_gmm(toy)
    model.load_state_dict({**model.state_dict(), **during, "initialised": torch.tensor(True)})
    model.eval()
    assert loss == pytest.approx(val_loss(model, toy), rel=1e-5)
    model.load_state_dict({**model.state_dict(), **after})
    assert abs(val_loss(model, toy) - loss) > 1e-3  # the live weights score otherwise


def test_keep_best_saves_the_average_of_the_best_validation(tmp_path, toy, added, one_thread):
    trajectory = Trajectory()
    added.append(trajectory)
    run = fit(new_gmm(toy), toy, TrainConfig(epochs=3, ema=0.9, **FAST), out=tmp_path / "run", log=quiet)
    assert [v[0] for v in trajectory.validations] == [8, 16, 24]
    step, during, loss, after = min(trajectory.validations, key=lambda v: v[2])
    saved = weights(dgm.load(run))
    assert all(torch.equal(saved[k], v) for k, v in during.items())
    assert differ(saved, after)
    metrics = read_metrics(run)
    assert (
        metrics["best_val_loss"]["value"] == pytest.approx(loss) and f"step {step}" in metrics["best_val_loss"]["what"]
    )


class Interrupt(L.Callback):
    """Ctrl-C during the validation of step ``step`` (while the average is swapped in)."""

    def __init__(self, step: int):
        self.step = step

    def on_validation_epoch_end(self, trainer, module) -> None:
        if trainer.global_step == self.step:
            raise KeyboardInterrupt


def test_an_interruption_in_validation_saves_the_average_and_checkpoints_the_live_weights(
    tmp_path, toy, added, one_thread
):
    trajectory = Trajectory()
    added.extend([trajectory, Interrupt(8)])
    model = new_gmm(toy)
    handler = signal.getsignal(signal.SIGINT)
    try:
        with pytest.raises(TrainingInterrupted, match="Ctrl-C"):
            fit(model, toy, TrainConfig(steps=100, ema=0.9, **FAST), out=tmp_path / "run", log=quiet)
    finally:
        signal.signal(signal.SIGINT, handler)  # Lightning ignores Ctrl-C once it has seen one
    run, live = tmp_path / "run", trajectory.live[8]
    assert_close(weights(dgm.load(run)), ema_by_hand(trajectory.live[:9], 0.9))  # no validation ended: the last average
    ckpt = checkpoint(run)
    assert ckpt["global_step"] == 8 and ckpt["callbacks"]["EMAWeights"]["updates"] == 8
    assert all(torch.equal(ckpt["state_dict"][f"model.{k}"], v) for k, v in live.items())
    assert all(torch.equal(p, live[k]) for k, p in model.named_parameters())  # the model trains on from here
    assert read_metrics(run)["ema_decay"]["value"] == 0.9


def test_a_run_resumed_after_a_kill_ends_with_the_average_of_an_uninterrupted_one(
    tmp_path, toy, added, monkeypatch, one_thread
):
    # One batch per epoch: the data order, which a resumed run draws anew, cannot matter.
    cfg = TrainConfig(steps=16, checkpoint_every=4, ema=0.9, keep="last", **{**FAST, "batch_size": 256})
    whole = fit(new_gmm(toy), toy, cfg, out=tmp_path / "whole", log=quiet)

    added.append(CrashAt(11))
    with monkeypatch.context() as patch:  # like kill -9: no checkpoint when it dies, the one of step 8 is left
        patch.setattr(PeriodicCheckpoint, "on_exception", lambda *args: None)
        with pytest.raises(Crash):
            fit(new_gmm(toy), toy, cfg, out=tmp_path / "split", log=quiet)
    added.clear()
    split = tmp_path / "split"
    ckpt = checkpoint(split)
    assert ckpt["global_step"] == 8 and ckpt["callbacks"]["EMAWeights"]["updates"] == 8

    fit(dgm.build("gmm", data=toy), toy, cfg, out=split, resume=True, log=quiet)
    assert checkpoint(split)["callbacks"]["EMAWeights"]["updates"] == 16
    assert_close(weights(dgm.load(split)), weights(dgm.load(whole)))


def train_with_ema(model: GenerativeModel, data: torch.Tensor) -> tuple[EMAWeights, GenerativeTask, Trajectory]:
    """One epoch of ``model`` on ``data`` in batches of 4 with an EMA of decay 0.5, nothing written."""
    task, ema, trajectory = GenerativeTask(model, TrainConfig(lr=0.1, ema=0.5)), EMAWeights(0.5), Trajectory()
    trainer = bare_trainer(callbacks=[ema, trajectory])
    trainer.fit(task, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=4))
    return ema, task, trajectory


def test_skipped_steps_do_not_move_the_average(one_thread):
    data = torch.full((40, 2), 3.0)
    data[8, 0] = -100.0  # the third of ten batches: its step is skipped
    ema, task, trajectory = train_with_ema(SometimesNaN(), data)
    assert task.skipped_steps == 1 and ema.updates == 9
    taken = trajectory.live[:3] + trajectory.live[4:]  # the weights after every step taken
    assert_close(ema.shadow, ema_by_hand(taken, 0.5))


def test_a_multi_part_model_updates_the_average_once_per_batch_with_a_step_taken(one_thread):
    data = torch.full((20, 2), 3.0)
    data[4, 0] = -100.0  # second batch: the discriminator's step is skipped, the generator's taken
    data[12] = -100.0  # fourth batch: both steps skipped
    ema, task, trajectory = train_with_ema(TwoParts({"discriminator": 0, "generator": 1}), data)
    assert task.skipped_steps == 3 and ema.updates == 4
    assert_close(ema.shadow, ema_by_hand(trajectory.live[:4] + trajectory.live[5:], 0.5))


def test_the_average_is_kept_in_float32_or_the_parameters_wider_type():
    model = nn.Sequential(nn.Linear(2, 2).to(torch.bfloat16), nn.Linear(2, 2).double())
    model.register_buffer("count", torch.tensor(3))
    ema = EMAWeights(0.9)
    ema.start(model)
    assert {k: v.dtype for k, v in ema.shadow.items()} == {
        "0.weight": torch.float32,
        "0.bias": torch.float32,
        "1.weight": torch.float64,
        "1.bias": torch.float64,
    }
    ema.load_state_dict({"updates": 0, "shadow": {"0.weight": torch.zeros(2, 2)}})
    with pytest.raises(RunError, match="not one of this model's parameters"):
        ema.start(model)


HELP = (
    "Keep an exponential moving average of the weights with this decay (e.g. 0.999) "
    "and save it for sampling and evaluation."
)
DECAY_ERROR = "ema must be a decay between 0 and 1 (exclusive), e.g. 0.999, got {} (--ema or train.ema)"


@pytest.mark.parametrize("value", [0, 1, -1, math.nan, 2, True])
def test_a_decay_outside_0_1_is_refused(value):
    with pytest.raises(ConfigError) as error:
        TrainConfig(ema=value)
    assert str(error.value) == DECAY_ERROR.format(repr(value))


@pytest.mark.parametrize("value", ["0", "1", "-1", "nan", "2"])
def test_the_command_line_refuses_a_bad_decay_before_writing(tmp_path, value):
    train = ["train", "gmm", "--data", TOY, "--accelerator", "cpu", "--steps", "2", "--out", str(tmp_path / "run")]
    assert_one_line_error(invoke([*train, "--ema", value]), DECAY_ERROR.format(float(value)))
    needle = "config key 'ema' expects float" if value == "nan" else "ema must be a decay between 0 and 1"
    assert_one_line_error(invoke([*train, "--set", f"train.ema={value}"]), needle)  # nan is no JSON number
    assert not (tmp_path / "run").exists()


def test_the_option_and_a_models_training_default_reach_the_run(tmp_path, monkeypatch, one_thread):
    help_text = " ".join(invoke(["train", "--help"]).output.split())
    assert f"--ema DECAY {HELP}" in help_text
    monkeypatch.setattr(get("gmm"), "train_defaults", {"ema": 0.9})
    train = ["train", "gmm", "--data", TOY, "--accelerator", "cpu", "--steps", "4", "--batch-size", "32"]
    result = invoke([*train, "--out", str(tmp_path / "default")])
    assert result.exit_code == 0, result.output
    assert "note: gmm's training defaults: ema 0.9 (the options override them)" in result.stderr
    assert read_record(tmp_path / "default").train["ema"] == 0.9
    assert read_metrics(tmp_path / "default")["ema_decay"]["value"] == 0.9
    result = invoke([*train, "--ema", "0.5", "--out", str(tmp_path / "option")])
    assert result.exit_code == 0, result.output
    assert read_record(tmp_path / "option").train["ema"] == 0.5
    assert checkpoint(tmp_path / "option")["callbacks"]["EMAWeights"]["decay"] == 0.5
