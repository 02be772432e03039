"""Run directories: what a training run leaves behind, and rebuilding a model from it.

```
runs/<name>/
  config.json          model name + config, data spec + transforms, training settings, versions, seed
  model.safetensors    weights (safetensors: loading never executes code)
  metrics.json         final evaluation
  samples.png          samples (or a density plot for 2-D data, waveforms for audio)
  samples.txt|.wav     text and audio runs: the samples themselves
  logs/                per-step metrics (CSV, TensorBoard when installed)
  checkpoints/         Lightning checkpoints for --resume
```
This module does not import Lightning, so ``dgm sample`` and ``dgm eval`` start fast.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from dgm.errors import ConfigError, RunError
from dgm.io import atomic_write, read_json, write_json

CONFIG = "config.json"
WEIGHTS = "model.safetensors"
METRICS = "metrics.json"
SAMPLES = "samples.png"
SAMPLES_TEXT = "samples.txt"  # text runs: the samples as text, beside their picture
SAMPLES_AUDIO = "samples.wav"  # audio runs: the samples as sound, beside their waveforms
TRAINING = "training.png"  # the training curves (dgm.viz.training)
LOGS = "logs"
CHECKPOINTS = "checkpoints"
# Everything a run writes (and --overwrite removes); other files in the folder are left alone.
RUN_FILES = (CONFIG, WEIGHTS, METRICS, SAMPLES, SAMPLES_TEXT, SAMPLES_AUDIO, TRAINING, LOGS, CHECKPOINTS)
# metrics.json records the id of the weights it was computed on (a safetensors metadata field).
WEIGHTS_ID = "weights_id"


def sample_files(info) -> str:
    """The sample files a run on data ``info`` writes: the picture, and for text or audio the
    samples themselves."""
    extra = SAMPLES_TEXT if info.vocab is not None else SAMPLES_AUDIO if info.sample_rate is not None else None
    return SAMPLES if extra is None else f"{SAMPLES} and {extra}"


@dataclass(frozen=True)
class RunRecord:
    """The contents of a run's config.json."""

    model: str
    config: dict[str, Any]
    data: dict[str, Any]  # {"spec": ..., "transforms": [...], "classes": [...] | None}
    train: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    versions: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "config": self.config,
            "data": self.data,
            "train": self.train,
            "seed": self.seed,
            "versions": self.versions,
        }


def versions() -> dict[str, str]:
    """Versions of dgm and torch (and Lightning when it is already imported)."""
    import sys

    import dgm

    out = {"dgm": dgm.__version__, "torch": torch.__version__}
    if "lightning" in sys.modules:
        out["lightning"] = sys.modules["lightning"].__version__
    return out


def run_path(run_dir) -> Path:
    """``run_dir`` as a Path, checked to be a dgm run directory."""
    path = Path(run_dir)
    if not path.is_dir():
        raise RunError(
            f"run directory {str(path)!r} does not exist; train one with 'dgm train MODEL --data DATA --out DIR'"
        )
    if not (path / CONFIG).is_file():
        raise RunError(f"{str(path)!r} is not a dgm run: it has no {CONFIG}")
    return path


def read_record(run_dir) -> RunRecord:
    """Read and validate a run's config.json."""
    path = run_path(run_dir) / CONFIG
    try:
        raw = read_json(path)
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(f"cannot read {path}: {e}") from None
    missing = [k for k in ("model", "config", "data") if k not in raw]
    if missing:
        raise RunError(f"{path} lacks the key(s) {', '.join(missing)}; it was not written by dgm")
    return RunRecord(
        model=raw["model"],
        config=raw["config"],
        data=raw["data"],
        train=raw.get("train", {}),
        seed=raw.get("seed"),
        versions=raw.get("versions", {}),
    )


def write_record(run_dir, record: RunRecord) -> Path:
    return write_json(Path(run_dir) / CONFIG, record.to_json())


def save_weights(run_dir, model: torch.nn.Module) -> Path:
    """Write the model's state dict to ``model.safetensors`` atomically, with a fresh weights id
    in its metadata (metrics computed on older weights are dropped by :func:`read_metrics`)."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    metadata = {WEIGHTS_ID: uuid.uuid4().hex}
    return atomic_write(Path(run_dir) / WEIGHTS, lambda tmp: save_file(state, tmp, metadata=metadata))


def weights_id(run_dir) -> str | None:
    """The id of the run's current weights (None when there are none, or they carry no id)."""
    from safetensors import SafetensorError, safe_open

    path = Path(run_dir) / WEIGHTS
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            return (f.metadata() or {}).get(WEIGHTS_ID)
    except (SafetensorError, OSError):
        return None


def load_model(run_dir, device: str | torch.device = "cpu"):
    """Rebuild the model of ``run_dir`` from config.json and model.safetensors, in eval mode."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from dgm.registry import build_from_dict

    record = read_record(run_dir)
    weights = Path(run_dir) / WEIGHTS
    if not weights.is_file():
        raise RunError(
            f"{str(run_dir)!r} has no {WEIGHTS} (training did not finish?); "
            f"resume it with 'dgm train --resume --out {run_dir}'"
        )
    model = build_from_dict(record.model, record.config)
    try:
        state = load_file(str(weights), device="cpu")
    except (SafetensorError, OSError) as e:
        raise RunError(f"cannot read {weights}: {e}") from None
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0]
        raise RunError(f"{weights} does not match the model in {CONFIG}: {first}") from None
    return model.to(device).eval()


def load_dataset_of(run_dir):
    """The dataset (with its transforms and class filter) a run was trained on."""
    from dgm.data import load_dataset

    data = read_record(run_dir).data
    return load_dataset(data["spec"], transforms=data.get("transforms", ()), classes=data.get("classes"))


def read_metrics(run_dir) -> dict[str, Any]:
    """The run's metrics.json, or {} when it has none or was computed on other weights than the
    current ``model.safetensors`` (a resumed run's old FD, say)."""
    path = Path(run_dir) / METRICS
    if not path.is_file():
        return {}
    try:
        metrics = read_json(path)
    except (OSError, json.JSONDecodeError) as e:
        raise RunError(f"cannot read {path}: {e}; delete it and run 'dgm eval {run_dir}'") from None
    if not isinstance(metrics, dict) or metrics.get(WEIGHTS_ID) != weights_id(run_dir):
        return {}
    return metrics


def write_metrics(run_dir, metrics: dict[str, Any], replace: bool = False) -> Path:
    """Merge ``metrics`` into the run's metrics.json (atomically), tagged with the id of the
    current weights; ``replace`` drops every earlier entry."""
    merged = {**({} if replace else read_metrics(run_dir)), **metrics, WEIGHTS_ID: weights_id(run_dir)}
    return write_json(Path(run_dir) / METRICS, merged)


def check_out_path(out: Path) -> None:
    """Refuse an ``--out`` that is a file, lies below a file, or cannot be created."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {str(out)!r} is a file; give a folder for the run")
    existing = next((p for p in [out, *out.parents] if p.exists()), Path("."))
    if not existing.is_dir():
        raise ConfigError(f"--out {str(out)!r} lies below the file {str(existing)!r}; give a folder path")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"--out {str(out)!r}: no permission to write in {str(existing)!r}")


def check_run_free(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to start a new run (neither ``resume`` nor ``overwrite``) in a folder holding one.
    The extra processes of a DDP run skip the check: they join the run their first process began."""
    from dgm.hardware import is_worker_process

    if not resume and not overwrite and (Path(run_dir) / CONFIG).is_file() and not is_worker_process():
        raise RunError(
            f"{str(run_dir)!r} already holds a run; pass --resume to continue it, --overwrite to "
            "start it again, or choose another --out"
        )


def remove_run(run_dir) -> None:
    """Delete what a run wrote in ``run_dir`` (for ``--overwrite``); other files stay."""
    for name in RUN_FILES:
        path = Path(run_dir) / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
