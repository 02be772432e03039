"""The training monitor (``--monitor-every``): its collapse warnings on generators that drop modes
or classes and silence on the data itself, the batches it logs at, a training run it leaves
unchanged, its best-so-far across a resume, and the values it refuses."""

from __future__ import annotations

import csv

import lightning as L
import pytest
import torch
from torch import nn

import dgm
from dgm.data.info import DataInfo
from dgm.errors import ConfigError
from dgm.models.base import GenerativeModel, ModelConfig, as_batch
from dgm.registry import get
from dgm.runs import read_metrics, read_record
from dgm.train import TrainConfig, fit
from dgm.train.module import GenerativeTask
from dgm.train.monitor import (
    TrainingMonitor,
    check_monitor,
    class_collapse_warning,
    class_limit,
    coverage_warning,
    dominant_class,
    monitor_kind,
)
from tests.conftest import assert_one_line_error, bare_trainer, invoke

FAST = dict(lr=0.05, batch_size=32, accelerator="cpu", eval_samples=16)


def quiet(message: str) -> None:
    pass


class Drawn(GenerativeModel):
    """A 'generator' that returns draws made by ``draw(n, generator)`` (model space), with one
    trainable weight so the engine can train it."""

    def __init__(self, info: DataInfo, draw):
        super().__init__(ModelConfig(info))
        self.w = nn.Parameter(torch.zeros(()))
        self.draw = draw
        self.modes_seen: list[bool] = []  # model.training at each sample() call

    def loss(self, batch, part=None):
        x = as_batch(batch).x.flatten(1)
        return {"loss": (x.mean() - self.w).pow(2)}

    def sample(self, n, cond=None, generator=None):
        self.modes_seen.append(self.training)
        return self.draw(n, generator)


def target_draws(ds):
    """Fresh draws of the toy target itself, in model space."""
    return lambda n, g: ds.apply_transforms(ds.target.sample(n, g))[0]


def one_mode(ds, k: int = 0):
    """Draws of mode ``k`` of the toy mixture only, in model space."""

    def draw(n, g):
        x = ds.target.modes[k].float() + ds.target.std * torch.randn(n, 2, generator=g)
        return ds.apply_transforms(x)[0]

    return draw


# ----- the decisions -----------------------------------------------------------------------


def test_coverage_warns_below_the_best_once_per_fall():
    assert coverage_warning(800, 23, 25, best=-1, best_batch=-1) is None  # the first check
    assert coverage_warning(900, 23, 25, best=23, best_batch=800, previous=23) is None
    message = coverage_warning(1200, 14, 25, best=23, best_batch=800, previous=23)
    assert message == "batch 1200: mode collapse? 14 of 25 modes covered, 23 at batch 800"
    assert coverage_warning(1300, 14, 25, best=23, best_batch=800, previous=14) is None  # still there
    assert coverage_warning(1400, 16, 25, best=23, best_batch=800, previous=14) is None  # recovering
    assert "9 of 25" in coverage_warning(1500, 9, 25, best=23, best_batch=800, previous=14)  # falls further
    assert coverage_warning(1600, 21, 25, best=23, best_batch=800, previous=23) is None  # 2 of 25: flicker
    assert coverage_warning(1600, 20, 25, best=23, best_batch=800, previous=23) is not None  # 3 of 25 lost
    assert coverage_warning(1600, 7, 8, best=8, best_batch=800, previous=8) is not None  # 1 of 8 lost


def test_a_class_with_more_than_half_the_samples_is_a_collapse():
    balanced = [50] * 10
    assert dominant_class(balanced) is None and class_collapse_warning(balanced, 100) is None
    assert class_collapse_warning([250, *[28] * 9], 100) is None  # exactly half: not more
    skewed = [20, 300, *[30] * 8]
    assert dominant_class(skewed) == 1
    assert (
        class_collapse_warning(skewed, 300)
        == "batch 300: class collapse? 300 of 560 samples are classified as digit 1 (54%)"
    )
    assert class_collapse_warning(skewed, 400, previous=1) is None  # the same collapse goes on
    assert class_collapse_warning([300, 10, *[20] * 8], 500, previous=1) is not None  # another class takes over
    # With two classes kept, 60% of one is no collapse, 80% is.
    assert class_limit(2) == 0.75 and class_limit(3) == class_limit(10) == 0.5
    assert class_collapse_warning([0, 0, 0, 300, 0, 0, 0, 200, 0, 0], 100, classes=[3, 7]) is None
    assert "digit 7" in class_collapse_warning([0, 0, 0, 100, 0, 0, 0, 400, 0, 0], 100, classes=[3, 7])


# ----- on samples --------------------------------------------------------------------------


@pytest.mark.parametrize(("spec", "transforms"), [("toy2d:gmm8", ["scale"]), ("toy2d:grid25", [])])
def test_a_generator_of_one_mode_after_a_good_check_is_a_mode_collapse(spec, transforms, one_thread):
    ds = dgm.load_dataset(f"{spec}?n=256", transforms=transforms)
    modes = len(ds.target.modes)
    monitor = TrainingMonitor(ds, every=100, log=quiet)
    target = Drawn(ds.info, target_draws(ds))
    for batch, seed in ((100, 0), (200, 1), (300, 2)):  # fresh draws of the target: never a warning
        monitor.seed = seed
        values, found = monitor.measure(target)
        assert values["monitor/modes_covered"] == modes and values["monitor/hq_fraction"] > 0.97
        assert monitor.observe(batch, found) is None
    collapsed = Drawn(ds.info, one_mode(ds))
    values, found = monitor.measure(collapsed)
    assert values["monitor/modes_covered"] == 1
    assert monitor.observe(400, found) == f"batch 400: mode collapse? 1 of {modes} modes covered, {modes} at batch 100"
    assert monitor.observe(500, monitor.measure(collapsed)[1]) is None  # said once
    assert monitor.count == 1 and monitor.record()["value"] == 1


def test_digits_of_one_class_are_a_class_collapse_and_real_digits_are_not(one_thread):
    ds = dgm.load_dataset("digits")
    x, y = ds.split("test").x, ds.split("test").y

    def real(n, g):
        return x[torch.randint(len(x), (n,), generator=g)]

    def threes(n, g):
        pool = x[y == 3]
        return pool[torch.randint(len(pool), (n,), generator=g)]

    monitor = TrainingMonitor(ds, every=10, log=quiet)
    values, found = monitor.measure(Drawn(ds.info, real))
    assert sum(found) == 500 and values["monitor/class_share/largest"] < 0.2
    assert sorted(values) == sorted([*(f"monitor/class_share/{c}" for c in range(10)), "monitor/class_share/largest"])
    assert monitor.observe(10, found) is None
    values, found = monitor.measure(Drawn(ds.info, threes))
    assert values["monitor/class_share/3"] > 0.8  # the 8x8 classifier is right on 90% of the test threes
    assert "samples are classified as digit 3" in monitor.observe(20, found)


# ----- in training -------------------------------------------------------------------------


def test_monitoring_leaves_the_training_run_unchanged_and_the_model_in_training_mode(one_thread):
    ds = dgm.load_dataset("toy2d:gmm8?n=128")

    def global_draws(n, g):  # a sampler that ignores its generator and draws from the global state
        return torch.randn(n, 2) * 4

    def train(monitored: bool):
        L.seed_everything(0, verbose=False)
        model = Drawn(ds.info, global_draws)
        callbacks = [TrainingMonitor(ds, every=2, log=quiet)] if monitored else []
        trainer = bare_trainer(max_epochs=3, callbacks=callbacks)
        trainer.fit(GenerativeTask(model, TrainConfig(lr=0.1)), train_dataloaders=ds.loader("train", 16, shuffle=True))
        return model

    plain, monitored = train(False), train(True)
    # 8 batches per epoch, a check every 2nd: 12 checks of 2000 points drawn 500 at a time, in eval mode
    assert monitored.modes_seen == [False] * 48
    assert monitored.training
    assert torch.equal(plain.w, monitored.w)  # the same shuffles: the global random state was left alone


def monitor_rows(run) -> dict[int, float]:
    with open(run / "logs" / "csv" / "metrics.csv", newline="") as f:
        return {
            int(r["step"]): float(r["monitor/modes_covered"]) for r in csv.DictReader(f) if r["monitor/modes_covered"]
        }


def test_the_monitor_logs_every_n_batches_and_keeps_its_best_over_a_resume(tmp_path, one_thread):
    ds = dgm.load_dataset("toy2d:gmm8?n=256")  # 8 batches of 32 per epoch
    cfg = dict(**FAST, monitor_every=3)
    run, lines = tmp_path / "run", []
    fit(Drawn(ds.info, target_draws(ds)), ds, TrainConfig(steps=8, **cfg), out=run, log=lines.append)
    assert monitor_rows(run) == {2: 8.0, 5: 8.0}  # after batches 3 and 6 (the log's step is the batch - 1)
    assert read_metrics(run)["monitor_warnings"]["value"] == 0
    assert (run / "training.png").is_file() and not any("warning" in line for line in lines)

    # The resumed session's generator has collapsed: it is compared with the first session's best.
    fit(Drawn(ds.info, one_mode(ds, 5)), ds, TrainConfig(steps=16, **cfg), out=run, resume=True, log=lines.append)
    assert monitor_rows(run) == {2: 8.0, 5: 8.0, 8: 1.0, 11: 1.0, 14: 1.0}
    warning = "batch 9: mode collapse? 1 of 8 modes covered, 8 at batch 3"
    assert [line for line in lines if line.startswith("warning")] == [f"warning: {warning}"]
    record = read_metrics(run)["monitor_warnings"]
    assert record["value"] == 1 and record["warnings"] == [warning] and warning in record["what"]
    assert read_record(run).train["monitor_every"] == 3


# ----- values refused ----------------------------------------------------------------------


@pytest.mark.parametrize("value", [0, -3, True])
def test_a_bad_monitor_every_is_refused(value):
    with pytest.raises(ConfigError, match="monitor_every must be a positive integer") as error:
        TrainConfig(monitor_every=value)
    assert "(--monitor-every or train.monitor_every)" in str(error.value)


def test_data_without_anything_to_monitor_is_refused_and_a_models_default_is_dropped(tmp_path, monkeypatch):
    moons, digits = dgm.load_dataset("toy2d:moons?n=256"), dgm.load_dataset("digits", transforms=["scale"])
    assert monitor_kind(moons) is None and monitor_kind(digits) == "classes"
    assert monitor_kind(dgm.load_dataset("toy2d:grid25?n=256")) == "modes"
    with pytest.raises(ConfigError, match="nothing to monitor on toy2d:moons"):
        check_monitor(10, moons)
    with pytest.raises(ConfigError, match="toy2d:gmm8 and toy2d:grid25"):
        fit(dgm.build("gmm", data=moons), moons, TrainConfig(steps=2, monitor_every=1, **FAST), out=tmp_path / "api")
    assert not (tmp_path / "api").exists()

    train = ["train", "gmm", "--data", "toy2d:moons?n=256", "--accelerator", "cpu", "--batch-size", "32"]
    assert_one_line_error(
        invoke([*train, "--monitor-every", "5", "--out", str(tmp_path / "cli")]), "--monitor-every: nothing to monitor"
    )
    assert not (tmp_path / "cli").exists()
    monkeypatch.setattr(get("gmm"), "train_defaults", {"monitor_every": 5})
    result = invoke([*train, "--steps", "2", "--out", str(tmp_path / "default")])
    assert result.exit_code == 0, result.output
    assert "monitor_every" not in result.stderr
    assert read_record(tmp_path / "default").train["monitor_every"] is None
