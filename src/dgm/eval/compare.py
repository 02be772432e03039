"""One table over runs of any family: the numbers of ``dgm compare``.

Each row is read from a run's config.json and metrics.json (which ``dgm eval`` fills); a value
a run lacks is shown as "-". Likelihood bounds are marked "<=" (an upper bound on the NLL): an
ELBO or importance-weighted bound, or the NLL of dequantized data, which bounds the NLL of the
discrete data (Theis et al. 2016). NLLs are in the raw data's units, so runs on the same data
compare whatever bijective or dequantizing transforms they used (:func:`comparable_data`).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from dgm.data.transforms import likelihood_effect
from dgm.runs import read_metrics, read_record

# (CSV field, Markdown header, meaning) in table order
COLUMNS = (
    ("run", "run", "run directory"),
    ("model", "model", "model name"),
    ("family", "family", "model family"),
    ("data", "data", "data spec, transforms and kept classes"),
    ("params", "params", "trainable parameters"),
    ("train_s", "train s", "wall-clock training time, seconds"),
    ("nll", "NLL nats", "test negative log-likelihood per example (<= marks an upper bound), ± standard error"),
    ("nll_se", None, "standard error of nll"),
    ("nll_is_bound", None, "true when nll is an upper bound (ELBO, importance-weighted, or of dequantized data)"),
    ("bits_per_dim", "bits/dim", "test NLL in bits per dimension"),
    ("fd", "FD", "Fréchet distance of n samples to the test split, in the feature space named beside it"),
    ("fd_space", None, "feature space of fd (digits28, digits8, or a labelled fallback)"),
    ("fd_n", None, "number of model samples fd was computed from"),
    ("precision", "precision", "fraction of samples on the data manifold (k=3)"),
    ("recall", "recall", "fraction of data on the sample manifold (k=3)"),
    ("ms_per_sample", "ms/sample", "sampling time per example, milliseconds"),
)


COMPARED_GROUPS = ("nll", "fd", "prdc", "speed")  # the metric groups the table shows


def comparable_data(run_dir) -> tuple:
    """What must agree for two runs' likelihoods to be compared: the raw data spec, the kept
    classes and the transforms that redefine the data (``binarize``); ``dequantize``, ``scale``
    and ``logit`` keep NLLs in the raw data's units (as an upper bound after dequantize)."""
    data = read_record(run_dir).data
    redefining, _ = likelihood_effect(data.get("transforms", ()))
    return data["spec"], tuple(data.get("classes") or ()), redefining


def missing_groups(run_dir) -> list[str]:
    """The compared metric groups that apply to a run and are not yet in its metrics.json
    (read from the model's declared capabilities; no weights are loaded)."""
    from dgm.eval.suite import group_of, why_not
    from dgm.registry import get
    from dgm.runs import load_dataset_of

    have = {group_of(key) for key in read_metrics(run_dir)}
    absent = [g for g in COMPARED_GROUPS if g not in have]
    if not absent:
        return []
    model_class, dataset = get(read_record(run_dir).model), load_dataset_of(run_dir)
    return [g for g in absent if why_not(g, model_class, dataset) is None]


def _value(metrics: dict[str, Any], key: str, scale: float = 1.0):
    entry = metrics.get(key)
    if not (isinstance(entry, dict) and isinstance(entry.get("value"), int | float)):
        return None
    return entry["value"] * scale if scale != 1.0 else entry["value"]


def compare_row(run_dir) -> dict[str, Any]:
    """The numbers of one run (None where the run has no such metric), keyed by CSV field."""
    from dgm.registry import get

    record = read_record(run_dir)
    metrics = read_metrics(run_dir)
    data = record.data["spec"] + "".join(f" {t}" for t in record.data.get("transforms", ()))
    if record.data.get("classes"):
        data += f" classes={','.join(map(str, record.data['classes']))}"
    nll_key = next((k for k in ("nll", "nll_iw", "nll_elbo") if k in metrics), None)
    _, dequantized = likelihood_effect(record.data.get("transforms", ()))
    fd_key = next((k for k in sorted(metrics) if k.startswith("fd_")), None)
    return {
        "run": Path(run_dir).name,
        "model": record.model,
        "family": get(record.model).family,
        "data": data,
        "params": _value(metrics, "parameters"),
        "train_s": _value(metrics, "train_time"),
        "nll": _value(metrics, nll_key) if nll_key else None,
        "nll_se": metrics[nll_key].get("se") if nll_key else None,
        "nll_is_bound": None if nll_key is None else nll_key != "nll" or dequantized,
        "bits_per_dim": _value(metrics, "bits_per_dim"),
        "fd": _value(metrics, fd_key) if fd_key else None,
        "fd_space": metrics[fd_key].get("space", fd_key[3:].replace("_", "-")) if fd_key else None,
        "fd_n": metrics[fd_key].get("n") if fd_key else None,
        "precision": _value(metrics, "precision"),
        "recall": _value(metrics, "recall"),
        "ms_per_sample": _value(metrics, "sample_time", 1000.0),
    }


def _number(value, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, int) or abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def _cells(row: dict[str, Any]) -> dict[str, str]:
    bound = "<= " if row["nll_is_bound"] else ""
    nll = _number(row["nll"])
    if row["nll"] is not None and row["nll_se"] is not None:
        nll += f" ± {row['nll_se']:.2g}"
    return {
        **{k: str(row[k]) for k in ("run", "model", "family", "data")},
        "params": _number(row["params"]),
        "train_s": _number(row["train_s"], 3),
        "nll": bound + nll if row["nll"] is not None else "-",
        "bits_per_dim": bound + _number(row["bits_per_dim"]) if row["bits_per_dim"] is not None else "-",
        "fd": _fd_cell(row),
        "precision": _number(row["precision"], 3),
        "recall": _number(row["recall"], 3),
        "ms_per_sample": _number(row["ms_per_sample"], 3),
    }


def _fd_cell(row: dict[str, Any]) -> str:
    """E.g. "209.6 (digits28, n=1000)"."""
    if row["fd"] is None:
        return "-"
    n = f", n={row['fd_n']}" if row["fd_n"] is not None else ""
    return f"{_number(row['fd'])} ({row['fd_space']}{n})"


def markdown_table(rows: list[dict[str, Any]]) -> str:
    """``rows`` (from :func:`compare_row`) as a GitHub Markdown table."""
    shown = [(field, header) for field, header, _ in COLUMNS if header]
    lines = ["| " + " | ".join(h for _, h in shown) + " |", "|" + "|".join(" --- " for _ in shown) + "|"]
    for row in rows:
        cells = _cells(row)
        lines.append("| " + " | ".join(cells[f] for f, _ in shown) + " |")
    return "\n".join(lines) + "\n"


def csv_table(rows: list[dict[str, Any]]) -> str:
    """``rows`` as CSV with every field (numbers unformatted, empty where missing)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[f for f, _, _ in COLUMNS], lineterminator="\n")
    writer.writeheader()
    writer.writerows([{k: "" if v is None else v for k, v in row.items()} for row in rows])
    return buffer.getvalue()
