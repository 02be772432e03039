"""Every option is checked before anything is written: a bad value is one line on standard error,
exit code 2, no traceback, and no run directory left behind."""

from __future__ import annotations

import pytest
import torch

from tests.conftest import assert_one_line_error, invoke

DIGITS = ["train", "made", "--data", "digits", "-t", "binarize", "--accelerator", "cpu"]


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--lr", "-1"], "lr must be a number greater than 0, got -1.0 (--lr or train.lr)"),
        (["--set", "train.lr=-1"], "lr must be a number greater than 0"),
        (["--set", "lr=-1"], "'lr' is a training setting, not a model field: use --set train.lr=VALUE (or --lr)"),
        (["--epochs", "-3"], "epochs must be a positive integer, got -3 (--epochs or train.epochs)"),
        (["--epochs", "0"], "epochs must be a positive integer, got 0"),
        (["--steps", "-2"], "steps must be a positive integer, got -2"),
        (["--steps", "0"], "steps must be a positive integer, got 0"),
        (["--minutes", "0"], "minutes must be a number greater than 0, got 0.0"),
        (["--minutes", "-1"], "minutes must be a number greater than 0, got -1.0"),
        (["--seed", "-1"], "seed must be an integer in 0..4294967295, got -1"),
        (["--batch-size", "0"], "batch_size must be a positive integer, got 0"),
        (["--patience", "-1"], "patience must be a positive integer, got -1"),
        (["--grad-clip", "-1"], "grad_clip must be a number greater than 0"),
        (["--weight-decay", "-1"], "weight_decay must be at least 0, got -1.0"),
        (["--devices", "0"], "devices must be a positive integer, got 0"),
        (["--num-nodes", "0"], "num_nodes must be a positive integer, got 0"),
        (["--checkpoint-every", "0"], "checkpoint_every must be a positive integer"),
        (
            ["--monitor-every", "0"],
            "monitor_every must be a positive integer, got 0 (--monitor-every or train.monitor_every)",
        ),
        (["--set", "train.monitor_every=-2"], "monitor_every must be a positive integer, got -2"),
        (["--set", "train.checkpoint_minutes=0"], "checkpoint_minutes must be a number greater than 0"),
        (["--accelerator", "tpu"], "accelerator must be one of auto, cpu, gpu, cuda, mps, got 'tpu'"),
        (["--set", "hidden=100000", "--data", "folder:nowhere"], "nowhere"),
        (["--resume", "--overwrite"], "--resume"),
    ],
)
def test_bad_training_options_are_one_line_errors_and_write_nothing(tmp_path, extra, needle):
    out = tmp_path / "run"
    result = invoke([*DIGITS, *extra, "--out", str(out)])
    assert_one_line_error(result, needle)
    assert not out.exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("accelerator", ["gpu", "cuda"])
def test_an_accelerator_the_machine_lacks_is_refused_naming_what_it_has(tmp_path, accelerator):
    result = invoke([*DIGITS, "--accelerator", accelerator, "--out", str(tmp_path / "run")])
    assert_one_line_error(result, f"--accelerator {accelerator}: this machine has no CUDA GPU")
    assert "CPU cores" in result.stderr and "--accelerator cpu" in result.stderr
    assert not (tmp_path / "run").exists()


def test_out_that_is_a_file_or_below_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("mine")
    result = invoke([*DIGITS, "--steps", "1", "--out", str(tmp_path / "file")])
    assert_one_line_error(result, "is a file; give a folder for the run")
    result = invoke([*DIGITS, "--steps", "1", "--out", str(tmp_path / "file" / "run")])
    assert_one_line_error(result, "lies below the file")
    assert (tmp_path / "file").read_text() == "mine"


def test_an_oversized_model_is_refused_before_it_is_built(tmp_path):
    result = invoke([*DIGITS, "--set", "hidden=20000,20000,20000", "--out", str(tmp_path / "run")])
    assert_one_line_error(result, "parameters, over the limit of 50,000,000")
    assert "--set train.max_parameters=N" in result.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
@pytest.mark.parametrize("command", ["sample", "eval"])
@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--device", "cuda"], "no CUDA GPU"),
        (["--device", "quantum"], "--device must be cpu, cuda, cuda:N or mps, got 'quantum'"),
        (["--seed", "-1"], "--seed must be an integer in 0..4294967295, got -1"),
    ],
)
def test_sample_and_eval_refuse_devices_and_seeds_that_do_not_exist(tmp_path, command, extra, needle):
    import dgm
    from dgm.runs import RunRecord, save_weights, write_record

    model = dgm.build("independent", data=dgm.DataInfo((1, 2, 2), "binary", 2))
    run = tmp_path / "run"
    write_record(
        run,
        RunRecord(
            model="independent",
            config={"data": {"shape": [1, 2, 2], "support": "binary", "levels": 2}},
            data={"spec": "digits", "transforms": ["binarize"]},
        ),
    )
    save_weights(run, model)
    result = invoke([command, str(run), *extra])
    assert_one_line_error(result, needle)


def untrained_run(run, name: str, spec: str, transforms: tuple[str, ...] = (), **config):
    """A run directory holding an untrained ``name`` for ``spec``, written without training."""
    import dgm
    from dgm.config import to_dict
    from dgm.runs import RunRecord, save_weights, write_record

    model = dgm.build(name, data=dgm.load_dataset(spec, transforms=list(transforms)), **config)
    write_record(
        run, RunRecord(model=name, config=to_dict(model.config), data={"spec": spec, "transforms": list(transforms)})
    )
    save_weights(run, model)
    return run


def test_sample_temperature_scales_a_flows_noise_and_is_refused_where_it_means_nothing(tmp_path):
    import numpy as np

    run = untrained_run(tmp_path / "nsf", "nsf", "toy2d:gmm8", layers=2)
    for t in ("1", "0"):
        result = invoke(["sample", str(run), "-n", "5", "--temperature", t, "--out", str(tmp_path / f"t{t}.npy")])
        assert result.exit_code == 0, result.output
    at_one, at_zero = np.load(tmp_path / "t1.npy"), np.load(tmp_path / "t0.npy")
    assert len(np.unique(at_one, axis=0)) == 5 and len(np.unique(at_zero, axis=0)) == 1  # T = 0: the mode's image
    assert invoke(["sample", str(run), "--temperature", "0.5", "--out", str(tmp_path / "t.png")]).exit_code == 0
    bad = invoke(["sample", str(run), "--temperature", "-1", "--out", str(tmp_path / "bad.npy")])
    assert_one_line_error(bad, "temperature must be a number >= 0")
    other = untrained_run(tmp_path / "independent", "independent", "digits", ("binarize",))
    refused = invoke(["sample", str(other), "--temperature", "0.5", "--out", str(tmp_path / "i.npy")])
    assert_one_line_error(refused, "model 'independent' does not sample with a temperature")
    assert not (tmp_path / "i.npy").exists() and not (tmp_path / "bad.npy").exists()


def test_a_models_training_defaults_apply_only_where_nothing_is_given():
    from dgm.cli.train import model_train_defaults

    assert model_train_defaults("nade", {}, {}) == {"lr": 0.01, "batch_size": 64}
    assert model_train_defaults("nade", {"lr": 0.002}, {}) == {"batch_size": 64}  # --lr or the config file
    assert model_train_defaults("nade", {}, {"batch_size": "32"}) == {"lr": 0.01}  # --set train.batch_size
    assert model_train_defaults("made", {}, {}) == {}
    assert model_train_defaults("no-such-model", {}, {}) == {}
