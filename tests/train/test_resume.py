"""Runs that survive: kill -9, Ctrl-C and SIGTERM at any moment, resumes that do what they say,
logs that are only appended to, metrics that never describe older weights. End to end, in
subprocesses, as a user would run them."""

from __future__ import annotations

import csv
import hashlib
import json
import random
import shutil
import signal
import subprocess
import tempfile
import time

import pytest
import torch

import dgm
from dgm.eval import evaluate
from dgm.runs import load_dataset_of, read_metrics, write_metrics
from tests.conftest import TRAIN_SMALL_MADE, cli_command, cli_env, run_cli

pytestmark = pytest.mark.slow
SMALL = [*TRAIN_SMALL_MADE, "--set", "hidden=32"]  # digits: 32 steps per epoch at batch 32


def start(*args: str) -> subprocess.Popen:
    """Start ``dgm *args``; its output goes to a file (a pipe nobody reads would fill and block it).
    Ctrl-C is restored in the child: a test session started in the background of a shell ignores
    SIGINT, and the child would inherit that and never see the Ctrl-C the tests send."""
    log = tempfile.TemporaryFile("w+")
    proc = subprocess.Popen(
        cli_command(*args),
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env=cli_env(),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    proc.log = log
    return proc


def output_of(proc: subprocess.Popen) -> str:
    proc.log.seek(0)
    return proc.log.read()


def wait_for(condition, proc: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before the condition held:\n{output_of(proc)[-2000:]}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail("condition not reached in time")
        time.sleep(0.2)


def log_rows(run) -> list[dict]:
    path = run / "logs" / "csv" / "metrics.csv"
    return list(csv.DictReader(open(path))) if path.is_file() else []


def assert_rows_kept(before: list[dict], after: list[dict], grown: bool = True) -> None:
    """Every row logged before is still there, in place (new columns may have been added); with
    ``grown``, the resumed run appended rows of its own."""
    assert len(after) > len(before) if grown else len(after) >= len(before)
    for old, new in zip(before, after, strict=False):
        assert {k: new[k] for k in old} == old


def test_kill_9_at_a_random_moment_then_resume_after_moving_the_directory(tmp_path):
    run, moved = tmp_path / "run", tmp_path / "elsewhere" / "run"
    proc = start(*SMALL, "--steps", "1000", "--out", str(run))
    wait_for(lambda: (run / "config.json").is_file(), proc)
    moment = random.Random().uniform(0.5, 12)
    time.sleep(moment)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = log_rows(run)
    ckpt = run / "checkpoints" / "last.ckpt"
    resumed_from = _step(ckpt) if ckpt.is_file() else 0
    json.loads((run / "config.json").read_text())  # every file left behind is whole
    finished = read_metrics(run).get("steps", {}).get("value") == 1000 and (run / "samples.png").is_file()
    moved.parent.mkdir()
    shutil.move(run, moved)
    out = run_cli("train", "--resume", "--out", str(moved), check=not finished)
    assert "Traceback" not in out.stderr
    if finished:  # the kill came after the run had written everything: nothing left to do
        assert out.returncode == 2 and "its whole budget" in out.stderr
    metrics = read_metrics(moved)
    assert metrics["steps"]["value"] == 1000, f"killed after {moment:.1f} s"
    assert torch.isfinite(torch.tensor(metrics["nll"]["value"]))
    assert sorted(p.name for p in (moved / "checkpoints").iterdir()) == ["last.ckpt"]
    if finished:
        assert log_rows(moved) == before
    elif before:  # rows are logged every 10 steps: a resume from step > 990 may have none to add
        assert_rows_kept(before, log_rows(moved), grown=resumed_from <= 990)


def test_ctrl_c_and_sigterm_save_a_checkpoint_and_the_weights_and_resume_continues(tmp_path):
    run = tmp_path / "run"
    ckpt = run / "checkpoints" / "last.ckpt"
    steps = []
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        args = [*SMALL, "--steps", "100000", "--out", str(run)]
        proc = start(*args) if sig == signal.SIGINT else start("train", "--resume", "--out", str(run))
        wait_for(lambda: ckpt.is_file() and _step(ckpt) > (steps[-1] if steps else 0), proc)
        time.sleep(1)
        proc.send_signal(sig)
        proc.wait(timeout=120)
        err = output_of(proc)
        assert proc.returncode == code, err[-2000:]
        message = [line for line in err.splitlines() if line.startswith("error:")]
        assert len(message) == 1 and "dgm train --resume --out" in message[0]
        assert "Traceback" not in err
        assert (run / "model.safetensors").is_file()  # usable at once: dgm sample works
        steps.append(read_metrics(run)["steps"]["value"])
        assert steps[-1] == _step(ckpt)
    assert steps[1] > steps[0]  # the SIGTERM'd session resumed from the Ctrl-C'd one
    dgm.load(run).log_prob(torch.zeros(2, 1, 8, 8))
    run_cli("train", "--resume", "--out", str(run), "--steps", str(steps[-1] + 10))
    assert read_metrics(run)["steps"]["value"] == steps[-1] + 10


def _step(path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["global_step"])
    except Exception:  # noqa: BLE001  (being replaced right now)
        return -1


def test_resume_with_a_new_budget_totals_and_drops_metrics_of_older_weights(tmp_path):
    run = tmp_path / "run"
    out = run_cli(*SMALL, "--epochs", "1", "--out", str(run))
    # in a log or a pipe, progress is a line per epoch, not a bar redrawn many times a second
    assert "\r" not in out.stderr and "epoch 0  step 32  val/loss" in out.stderr
    first = read_metrics(run)
    assert first["steps"]["value"] == 32
    model, dataset = dgm.load(run), load_dataset_of(run)
    write_metrics(run, evaluate(model, dataset, ["fd", "speed"], n=20))
    assert "fd_digits" in read_metrics(run) and read_metrics(run)["fd_digits"]["n"] == 20
    lines = (run / "logs" / "csv" / "metrics.csv").read_text().splitlines()

    run_cli("train", "--resume", "--out", str(run), "--steps", "50")  # replaces the epoch budget
    metrics = read_metrics(run)
    assert metrics["steps"]["value"] == 50
    assert not {"fd_digits", "sample_time"} & set(metrics)  # computed on the old weights
    assert metrics["train_time"]["value"] > first["train_time"]["value"]  # a total over sessions
    assert (run / "logs" / "csv" / "metrics.csv").read_text().splitlines()[: len(lines)] == lines
    record = json.loads((run / "config.json").read_text())
    assert record["train"]["steps"] == 50 and record["train"]["epochs"] is None

    proc = run_cli("train", "--resume", "--out", str(run), check=False)
    assert proc.returncode == 2 and "has trained 50 of 50 steps, its whole budget" in proc.stderr


def test_resume_of_an_early_stopped_run(tmp_path):
    run = tmp_path / "run"
    # A learning rate this large stops improving at once: early stopping ends the run.
    run_cli(*SMALL, "--lr", "0.5", "--epochs", "200", "--patience", "1", "--out", str(run))
    stopped = read_metrics(run)["steps"]["value"]
    assert stopped < 200 * 32
    proc = run_cli("train", "--resume", "--out", str(run), check=False)
    assert proc.returncode == 2 and "stopped early" in proc.stderr and "--patience" in proc.stderr
    assert "Traceback" not in proc.stderr
    out = run_cli("train", "--resume", "--out", str(run), "--patience", "3")
    assert "early stopping" in out.stderr
    assert read_metrics(run)["steps"]["value"] > stopped


def test_a_pickle_as_the_checkpoint_is_refused_in_one_line_and_changes_no_file(tmp_path):
    run = tmp_path / "run"
    run_cli(*SMALL, "--steps", "5", "--out", str(run))
    torch.save({"state_dict": {}, "obj": Exploit(tmp_path / "pwned")}, run / "checkpoints" / "last.ckpt")
    hashes = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.rglob("*") if p.is_file()}
    proc = run_cli("train", "--resume", "--out", str(run), "--steps", "10", check=False)
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "not a checkpoint dgm can load safely" in errors[0] and "--overwrite" in errors[0]
    assert "Traceback" not in proc.stderr and not (tmp_path / "pwned").exists()
    assert {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in run.rglob("*") if p.is_file()} == hashes
    run_cli(*SMALL, "--steps", "5", "--out", str(run), "--overwrite")  # the way out it names
    assert read_metrics(run)["steps"]["value"] == 5


class Exploit:
    """Unpickling it creates a file: proof that code ran."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))
