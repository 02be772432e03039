"""The compare table: one row per run, bounds marked, missing numbers shown as missing."""

from __future__ import annotations

import csv
import io

from dgm.eval.compare import COLUMNS, compare_row, csv_table, markdown_table
from dgm.runs import RunRecord, write_metrics, write_record


def make_run(path, model: str, metrics: dict, transforms=("binarize",)):
    path.mkdir()
    write_record(path, RunRecord(model=model, config={}, data={"spec": "digits", "transforms": list(transforms)}))
    write_metrics(path, metrics)
    return path


def entry(value, se=None, unit=""):
    return {"value": value, "unit": unit, "what": "", **({"se": se} if se is not None else {})}


def test_rows_mark_bounds_and_missing_values(tmp_path):
    exact = make_run(
        tmp_path / "a",
        "made",
        {
            "nll": entry(20.5, 0.4),
            "bits_per_dim": entry(0.46),
            "fd_digits8": entry(3.25, 0.1),
            "precision": entry(0.8),
            "recall": entry(0.7),
            "sample_time": entry(0.002),
            "parameters": entry(1234),
            "train_time": entry(12.3),
        },
    )
    bound = make_run(tmp_path / "b", "independent", {"nll_elbo": entry(30.0, 1.0), "nll_iw": entry(25.0, 1.0)})
    rows = [compare_row(exact), compare_row(bound)]
    assert rows[0]["family"] == "autoregressive" and rows[0]["nll"] == 20.5 and rows[0]["nll_is_bound"] is False
    assert rows[0]["fd_space"] == "digits8" and rows[0]["ms_per_sample"] == 2.0
    assert rows[1]["nll"] == 25.0 and rows[1]["nll_is_bound"] is True  # the tighter bound, marked
    assert rows[1]["fd"] is None and rows[1]["params"] is None

    md = markdown_table(rows).splitlines()
    assert len(md) == 4 and md[0].count("|") == md[2].count("|") == md[3].count("|")
    assert "20.5 ± 0.4" in md[2] and "3.25 (digits8)" in md[2] and "1,234" in md[2]
    assert "<= 25 ± 1" in md[3] and "| - |" in md[3]

    parsed = list(csv.DictReader(io.StringIO(csv_table(rows))))
    assert list(parsed[0]) == [field for field, _, _ in COLUMNS]
    assert float(parsed[0]["nll"]) == 20.5 and parsed[1]["fd"] == "" and parsed[1]["nll_is_bound"] == "True"


def test_missing_groups_are_read_from_the_metrics_and_the_declared_capabilities(tmp_path):
    from dgm.eval.compare import missing_groups

    run = make_run(tmp_path / "c", "made", {"nll": entry(20.5, 0.4), "sample_time": entry(0.002)})
    assert missing_groups(run) == ["fd", "prdc"]  # no weights needed to decide
    done = make_run(tmp_path / "d", "made", {"nll_iw": entry(1.0), "fd_digits": entry(1.0), "recall": entry(0.5)})
    assert missing_groups(done) == ["speed"]


def test_dequantized_likelihoods_are_bounds_comparable_with_the_discrete_ones(tmp_path):
    from dgm.data.transforms import likelihood_effect
    from dgm.eval.compare import comparable_data

    assert likelihood_effect(["dequantize", "scale", "logit:0.05"]) == ((), True)
    assert likelihood_effect(["binarize:stochastic", "scale:-1,1"]) == (("binarize:stochastic",), False)
    flow = make_run(tmp_path / "flow", "realnvp", {"nll": entry(95.0, 0.6)}, ("dequantize", "scale", "logit:0.05"))
    discrete = make_run(tmp_path / "ar", "made", {"nll": entry(90.0, 0.5)}, ())
    binary = make_run(tmp_path / "bin", "made", {"nll": entry(20.0, 0.5)}, ("binarize",))
    assert compare_row(flow)["nll_is_bound"] is True and compare_row(discrete)["nll_is_bound"] is False
    assert comparable_data(flow) == comparable_data(discrete) != comparable_data(binary)
