"""The learning-rate schedule: the rate each optimizer step actually uses, for one part and for
several, through the engine and the command line, and across a resume."""

from __future__ import annotations

import math

import lightning as L
import pytest
import torch

import dgm
from dgm.config import from_dict
from dgm.errors import ConfigError
from dgm.runs import read_record
from dgm.train import TrainConfig, engine, fit
from dgm.train.module import GenerativeTask, cosine_factor, schedule_length
from tests.conftest import assert_one_line_error, bare_trainer, invoke
from tests.train.toys import Crash, CrashAt, TwoParts

LR = 0.01
FAST = dict(lr=LR, accelerator="cpu", eval_samples=16)
TOY = "toy2d:gmm8?n=256"  # 256 training points: 8 batches of 32 per epoch


@pytest.fixture(scope="module")
def toy():
    return dgm.load_dataset(TOY)


@pytest.fixture
def used_lrs(monkeypatch) -> list[float]:
    """The learning rate of every AdamW step taken while the test runs, in order."""
    lrs: list[float] = []
    step = torch.optim.AdamW.step

    def recording_step(self, *args, **kwargs):
        lrs.append(self.param_groups[0]["lr"])
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording_step)
    return lrs


def cosine(total: int, lr: float = LR) -> list[float]:
    """The schedule written out independently of the code under test."""
    return [lr * 0.5 * (1 + math.cos(math.pi * t / total)) for t in range(total)]


def checkpoint(run) -> dict:
    return torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)


def quiet(message: str) -> None:
    pass


def test_cosine_factor_follows_the_closed_form():
    assert cosine_factor(0, 10) == 1.0
    assert cosine_factor(5, 10) == pytest.approx(0.5)
    assert cosine_factor(3, 12) == pytest.approx(0.5 * (1 + math.cos(math.pi / 4)))
    assert cosine_factor(10, 10) == pytest.approx(0.0, abs=1e-12)
    assert cosine_factor(13, 10) == pytest.approx(0.0, abs=1e-12)  # no restart after the end


def test_the_schedule_lasts_the_smaller_budget_in_batches():
    assert schedule_length(steps=100, epochs=None, batches_per_epoch=None) == 100
    assert schedule_length(steps=None, epochs=3, batches_per_epoch=8) == 24
    assert schedule_length(steps=100, epochs=3, batches_per_epoch=8) == 24
    assert schedule_length(steps=10, epochs=3, batches_per_epoch=8) == 10
    assert schedule_length(steps=9, epochs=None, batches_per_epoch=8, parts=2) == 5  # a step per part
    with pytest.raises(ConfigError, match="needs --steps or --epochs"):
        schedule_length(steps=None, epochs=None, batches_per_epoch=8)


@pytest.mark.parametrize(
    "name, budget, batch_size, total",
    [
        ("gmm", dict(steps=12), 32, 12),
        ("independent", dict(epochs=2), 64, 8),  # 4 batches per epoch
        ("independent", dict(epochs=1, steps=100), 32, 8),  # the epoch ends first
    ],
)
def test_a_cosine_fit_steps_with_the_formula_and_ends_near_zero(
    tmp_path, toy, used_lrs, one_thread, name, budget, batch_size, total
):
    cfg = TrainConfig(**budget, batch_size=batch_size, lr_schedule="cosine", **FAST)
    run = fit(dgm.build(name, data=toy), toy, cfg, out=tmp_path / "run", log=quiet)
    assert used_lrs == pytest.approx(cosine(total), rel=1e-9, abs=1e-12)
    assert used_lrs[-1] < 0.05 * LR  # the last step is one step short of the end: lr * (1 - cos(pi / T)) / 2
    ckpt = checkpoint(run)
    assert ckpt["lr_schedulers"][0]["last_epoch"] == total
    assert ckpt["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_the_constant_schedule_keeps_the_rate_and_makes_no_scheduler(tmp_path, toy, used_lrs, one_thread):
    cfg = TrainConfig(steps=6, batch_size=32, **FAST)
    assert cfg.lr_schedule == "constant"
    run = fit(dgm.build("gmm", data=toy), toy, cfg, out=tmp_path / "run", log=quiet)
    assert used_lrs == [LR] * 6
    assert checkpoint(run)["lr_schedulers"] == []
    optimizers = GenerativeTask(dgm.build("gmm", data=toy), cfg).configure_optimizers()
    assert isinstance(optimizers, list) and all(isinstance(o, torch.optim.AdamW) for o in optimizers)


def test_a_resumed_run_continues_the_schedule_where_it_stopped(tmp_path, toy, used_lrs, monkeypatch, one_thread):
    cfg = TrainConfig(steps=16, batch_size=32, lr_schedule="cosine", **FAST)
    whole = fit(dgm.build("gmm", data=toy), toy, cfg, out=tmp_path / "whole", log=quiet)
    uninterrupted = list(used_lrs)
    assert len(uninterrupted) == 16

    used_lrs.clear()
    make_trainer = engine.make_trainer

    def crashing(config, run_dir, callbacks, batches_per_epoch):
        return make_trainer(config, run_dir, [*callbacks, CrashAt(8)], batches_per_epoch)

    monkeypatch.setattr(engine, "make_trainer", crashing)
    with pytest.raises(Crash):
        fit(dgm.build("gmm", data=toy), toy, cfg, out=tmp_path / "split", log=quiet)
    monkeypatch.setattr(engine, "make_trainer", make_trainer)
    first = list(used_lrs)
    assert len(first) == 8

    record = read_record(tmp_path / "split")
    assert record.train["lr_schedule"] == "cosine" and from_dict(TrainConfig, record.train) == cfg
    constant = TrainConfig(steps=16, batch_size=32, **FAST)
    with pytest.raises(ConfigError, match="was trained with --lr-schedule cosine; resume it with the same schedule"):
        fit(dgm.build("gmm", data=toy), toy, constant, out=tmp_path / "split", resume=True, log=quiet)

    used_lrs.clear()
    split = fit(dgm.build("gmm", data=toy), toy, cfg, out=tmp_path / "split", resume=True, log=quiet)
    assert first + used_lrs == pytest.approx(uninterrupted, rel=1e-12)
    end_whole, end_split = checkpoint(whole), checkpoint(split)
    assert end_split["global_step"] == 16
    assert end_split["lr_schedulers"] == end_whole["lr_schedulers"]
    lrs = [c["optimizer_states"][0]["param_groups"][0]["lr"] for c in (end_whole, end_split)]
    assert lrs[0] == lrs[1]


class RecordLrs(L.Callback):
    """The learning rate of every optimizer at the start of each batch."""

    def __init__(self):
        self.lrs: list[list[float]] = []

    def on_train_batch_start(self, trainer, *args) -> None:
        self.lrs.append([opt.param_groups[0]["lr"] for opt in trainer.optimizers])


def test_every_part_follows_the_schedule_and_a_skipped_step_still_advances_it(one_thread):
    data = torch.full((20, 2), 3.0)
    data[8] = -100.0  # the third of five batches: its discriminator step is skipped
    task = GenerativeTask(TwoParts({"discriminator": 0}), TrainConfig(lr=0.1, epochs=1, lr_schedule="cosine"))
    record = RecordLrs()
    trainer = bare_trainer(callbacks=[record])
    trainer.fit(task, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=4))
    assert task.skipped_steps == 1 and trainer.global_step == 9
    expected = cosine(5, lr=0.1)
    for part in range(2):
        assert [lrs[part] for lrs in record.lrs] == pytest.approx(expected, rel=1e-9)
        assert trainer.optimizers[part].param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


def test_cosine_with_only_a_minutes_budget_is_refused_naming_the_fix(tmp_path):
    needle = "--lr-schedule cosine needs --steps or --epochs to know where the schedule ends"
    with pytest.raises(ConfigError, match=needle):
        TrainConfig(minutes=5, lr_schedule="cosine")
    TrainConfig(minutes=5, steps=100, lr_schedule="cosine")
    TrainConfig(lr_schedule="cosine")  # no budget at all: the default 20 epochs
    train = ["train", "gmm", "--data", TOY, "--accelerator", "cpu", "--minutes", "1", "--out", str(tmp_path / "run")]
    assert_one_line_error(invoke([*train, "--lr-schedule", "cosine"]), needle)
    assert_one_line_error(invoke([*train, "--set", "train.lr_schedule=cosine"]), needle)
    assert not (tmp_path / "run").exists()


def test_a_bad_schedule_is_refused_naming_the_allowed_values(tmp_path):
    with pytest.raises(ConfigError, match=r"lr_schedule must be one of constant, cosine, got 'linear' \(--lr-schedule"):
        TrainConfig(steps=10, lr_schedule="linear")
    train = ["train", "gmm", "--data", TOY, "--accelerator", "cpu", "--steps", "4", "--out", str(tmp_path / "run")]
    result = invoke([*train, "--lr-schedule", "linear"])
    assert_one_line_error(result, "'lr_schedule' expects 'constant' | 'cosine', got 'linear'")
    assert not (tmp_path / "run").exists()


def test_the_command_line_option_reaches_the_run(tmp_path, one_thread):
    run = tmp_path / "run"
    train = ["train", "gmm", "--data", TOY, "--accelerator", "cpu", "--steps", "4", "--batch-size", "32"]
    result = invoke([*train, "--lr-schedule", "cosine", "--out", str(run)])
    assert result.exit_code == 0, result.output
    assert read_record(run).train["lr_schedule"] == "cosine"
    assert checkpoint(run)["lr_schedulers"][0]["last_epoch"] == 4
