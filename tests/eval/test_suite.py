"""Which metrics apply to which model and data, and the suite that computes them."""

from __future__ import annotations

import pytest
import torch

import dgm
from dgm.errors import ConfigError, DgmError
from dgm.eval import GROUPS, evaluate, parse_metrics, quick_groups
from dgm.eval.suite import choose_groups, eval_labels
from tests.conftest import fit_independent


@pytest.fixture(scope="module")
def gmm8():
    return dgm.load_dataset("toy2d:gmm8")


def test_metric_names_are_parsed_and_unknown_ones_refused():
    assert parse_metrics(None) is None and parse_metrics("all") is None
    assert parse_metrics(" nll, fd ,prdc") == ["nll", "fd", "prdc"]
    with pytest.raises(ConfigError, match="unknown metric 'fid'; choose from nll"):
        parse_metrics("nll,fid")


def test_the_groups_that_apply_follow_the_model_and_the_data(digits_binary, gmm8):
    made = dgm.build("made", data=digits_binary, hidden=(16,))
    assert choose_groups(made, digits_binary, None) == ["nll", "fd", "kid", "prdc", "classes", "anomaly", "speed"]
    assert quick_groups(made, digits_binary) == ["nll"]
    gauss = dgm.build("independent", data=gmm8)
    assert choose_groups(gauss, gmm8, None) == ["nll", "kl", "mmd", "modes", "speed"]
    assert quick_groups(gauss, gmm8) == ["nll", "kl"]
    gan = dgm.build("gan", data=gmm8, hidden=8, layers=1)  # no density: its cheap sample metrics instead
    assert choose_groups(gan, gmm8, None) == ["mmd", "modes", "speed"]
    assert quick_groups(gan, gmm8) == ["mmd", "modes"]
    dcgan = dgm.build("dcgan", data=digits_binary, features=4)
    assert quick_groups(dcgan, digits_binary) == ["fd", "classes"]
    assert "probe" not in choose_groups(dcgan, digits_binary, None)  # a latent space, but no encoder
    assert set(GROUPS) >= {"nll", "fd", "kid", "prdc", "kl", "mmd", "modes", "anomaly", "probe", "speed"}


@pytest.mark.parametrize(
    "group, reason", [("kl", "no analytic target"), ("probe", "has no encoder"), ("modes", "no analytic target")]
)
def test_asking_for_a_metric_that_does_not_apply_says_why(digits_binary, group, reason):
    made = dgm.build("made", data=digits_binary, hidden=(16,))
    with pytest.raises(ConfigError, match=f"metric '{group}' does not apply: .*{reason}"):
        choose_groups(made, digits_binary, [group])


def test_mode_coverage_is_for_gaussian_mixtures_only():
    rings = dgm.load_dataset("toy2d:rings")
    with pytest.raises(ConfigError, match="toy2d:rings is not a Gaussian mixture"):
        choose_groups(dgm.build("independent", data=rings), rings, ["modes"])


def test_sampling_time_is_reported_per_example(digits_binary):
    model = dgm.build("independent", data=digits_binary)
    found = evaluate(model, digits_binary, ["speed"], n=50)
    assert set(found) == {"sample_time"}
    assert found["sample_time"]["unit"] == "s/example" and 0 < found["sample_time"]["value"] < 1
    assert found["sample_time"]["n"] == 50


def test_conditional_samples_follow_the_labels_of_the_split(digits_binary):
    model = dgm.build("independent", data=digits_binary, conditional=True)
    labels = eval_labels(model, digits_binary, "test", 500)
    y = digits_binary.split("test").y
    assert torch.equal(labels[: len(y)], y) and torch.equal(labels[len(y) :], y[: 500 - len(y)])
    assert eval_labels(dgm.build("independent", data=digits_binary), digits_binary, "test", 5) is None


def test_fewer_conditional_samples_than_the_split_keep_its_class_proportions(digits_binary):
    model = dgm.build("independent", data=digits_binary, conditional=True)
    y = digits_binary.split("test").y
    sorted_y = y.sort().values  # a split sorted by class: the first labels are one class only
    split = type("Split", (), {"y": sorted_y})()
    dataset = type("Data", (), {"split": lambda self, name: split})()
    labels = eval_labels(model, dataset, "test", 100)
    expected = torch.bincount(sorted_y, minlength=10).double() / len(y) * 100
    assert (torch.bincount(labels, minlength=10).double() - expected).abs().max() <= 1


def test_a_better_model_scores_better_in_the_digit_feature_space(digits_binary):
    # one Bernoulli table per class, sampled with the test labels, draws recognisable digits of
    # every class; one table for all classes draws one blurred average digit
    found = {
        conditional: evaluate(fit_independent(digits_binary, conditional), digits_binary, ["fd", "prdc", "classes"])
        for conditional in (False, True)
    }
    worse, better = found[False], found[True]
    assert better["fd_digits"]["value"] < worse["fd_digits"]["value"] / 2
    assert better["recall"]["value"] > worse["recall"]["value"] + 0.2
    assert better["classifier_score"]["value"] > worse["classifier_score"]["value"] + 2
    assert max(better["class_histogram"]["value"]) < 0.3 < max(worse["class_histogram"]["value"])  # "8" dominates
    assert "nll" not in better and "kid" not in better  # only the groups asked for


def test_the_feature_space_can_be_forced_for_images_that_are_not_digits(digits_binary):
    model = dgm.build("independent", data=digits_binary)
    assert "classes" not in choose_groups(model, digits_binary, None, features="random-conv")
    found = evaluate(model, digits_binary, ["fd"], n=100, features="random-conv")
    assert set(found) == {"fd_random_conv"} and found["fd_random_conv"]["space"] == "random-conv"
    with pytest.raises(ConfigError, match="metric 'classes' does not apply: the random-conv feature space"):
        choose_groups(model, digits_binary, ["classes"], features="random-conv")
    with pytest.raises(DgmError, match="no feature space 'digits28' for images of shape"):
        evaluate(model, digits_binary, ["fd"], n=100, features="digits28")
