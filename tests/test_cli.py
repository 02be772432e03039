"""The dgm command: help with examples, clear one-line errors, no Lightning outside train."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import assert_one_line_error, invoke, run_cli


@pytest.mark.parametrize("command", ["list", "train", "sample", "eval", "compare"])
def test_every_command_has_help_with_an_example(command):
    out = run_cli(command, "--help").stdout
    assert "Example: dgm" in out
    assert not re.search(r"<(str|bool|int|float|path|list\[str\])>", out), out  # no type tags


def test_list_shows_models_capabilities_and_datasets():
    out = run_cli("list").stdout
    for word in ("made", "fvsbn", "independent", "exact", "mnist5k", "toy2d:gmm8", "digits"):
        assert word in out


def test_commands_that_do_not_train_do_not_import_lightning(tmp_path):
    code = (
        "import sys; from typer.testing import CliRunner; from dgm.cli import app; "
        "r = CliRunner().invoke(app, ['list']); assert r.exit_code == 0, r.output; "
        "r = CliRunner().invoke(app, ['eval', 'nowhere']); assert r.exit_code == 2, r.output; "
        "assert not [m for m in sys.modules if m.split('.')[0] in ('lightning', 'pytorch_lightning')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["train", "nosuchmodel", "--data", "digits"], "unknown model 'nosuchmodel'; known models:"),
        (["train", "made", "--data", "digits", "--set", "hiden=3"], "unknown config key 'hiden'"),
        (["train", "made", "--data", "digits", "--set", "hidden=big"], "config key 'hidden' expects"),
        (["train", "made"], "name the data with --data"),
        (["train", "fvsbn", "--data", "digits"], "--transform binarize"),
        (["train", "made", "--data", "nosuchdata"], "nosuchdata"),
        (["train", "--resume", "--out", "nowhere"], "nowhere"),
        (["sample", "nowhere"], "does not exist"),
        (["eval", "nowhere"], "does not exist"),
        (["eval", "nowhere", "--metrics", "nll,bogus"], "unknown metric 'bogus'; choose from nll, fd"),
        (["compare", "nowhere"], "does not exist"),
    ],
)
def test_bad_input_gives_a_one_line_error(tmp_path, monkeypatch, args, needle):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(invoke(args), needle)
    assert not list(tmp_path.iterdir())  # nothing written


def test_config_file_keys_are_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "c.yaml").write_text("model: made\ndata: digits\nepochs: 3\n")
    assert_one_line_error(invoke(["train", "--config", "c.yaml"]), "unknown key 'epochs'")
    (tmp_path / "d.yaml").write_text("model: made\ndata: digits\ntrain: {epoch: 3}\n")
    assert_one_line_error(invoke(["train", "--config", "d.yaml"]), "unknown config key 'epoch'")


@pytest.mark.slow
def test_train_sample_eval_from_the_command_line(tmp_path):
    (tmp_path / "c.yaml").write_text(
        "model: made\ndata: digits\ntransforms: [binarize]\nconfig: {hidden: [24]}\n"
        "train: {steps: 20, batch_size: 50, accelerator: cpu}\n"
    )
    out = run_cli("train", "--config", "c.yaml", "--out", "run", cwd=tmp_path).stdout
    assert "nll" in out and "nats/example" in out
    run_cli("sample", "run", "-n", "9", "--out", "s.npy", "--seed", "3", cwd=tmp_path)
    run_cli("sample", "run", "-n", "9", "--out", "t.npy", "--seed", "3", cwd=tmp_path)
    a, b = np.load(tmp_path / "s.npy"), np.load(tmp_path / "t.npy")
    assert a.shape == (9, 1, 8, 8) and np.array_equal(a, b) and set(np.unique(a)) <= {0.0, 1.0}
    run_cli("sample", "run", "-n", "16", "--out", "grid.png", cwd=tmp_path)
    assert (tmp_path / "grid.png").stat().st_size > 1000
    out = run_cli("eval", "run", "--metrics", "nll,fd,prdc,speed", "-n", "60", cwd=tmp_path).stdout
    for name in ("bits_per_dim", "fd_digits", "precision", "coverage", "sample_time", "s/example"):
        assert name in out
    assert "kid" not in out  # only the groups asked for
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["fd_digits"]["n"] == 60 and "digits8" in metrics["fd_digits"]["what"]
    proc = run_cli("eval", "run", "--metrics", "kl", cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "metric 'kl' does not apply: digits has no analytic target" in proc.stderr

    table = run_cli("compare", "run", "run", "--md", "t.md", "--csv", "t.csv", cwd=tmp_path).stdout
    assert table.splitlines()[0].startswith("| run | model | family")
    assert (tmp_path / "t.md").read_text() in table
    rows = list(csv.DictReader(open(tmp_path / "t.csv")))
    assert len(rows) == 2 and rows[0]["model"] == "made" and float(rows[0]["fd"]) == metrics["fd_digits"]["value"]
