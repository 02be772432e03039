"""dgm: deep generative models behind one API and one CLI.

>>> import dgm
>>> ds = dgm.load_dataset("mnist5k", transforms=["binarize"])
>>> model = dgm.build("made", data=ds, hidden=(500,))
>>> x = model.sample(4)

Training needs PyTorch Lightning and lives in :mod:`dgm.train`; importing ``dgm`` does not
import it.
"""

import os

# OpenMP threads that spin while waiting collapse when anything else runs on the machine: the
# default MADE trained at 1.0 step/s with the default active wait and 7.6 with passive waiting on
# 2 cores beside two busy loops (python benchmarks/thread_contention.py). It must be set before
# torch is first imported; a value the user set is kept.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dgm.data.info import DataInfo  # noqa: E402
from dgm.errors import ConfigError, DataError, DgmError, RunError  # noqa: E402
from dgm.registry import build, list_models, register  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "DataError",
    "DataInfo",
    "DgmError",
    "RunError",
    "build",
    "list_models",
    "load",
    "load_dataset",
    "register",
]


def load(run_dir, device="cpu"):
    """Rebuild the model saved in ``run_dir`` (config.json + model.safetensors); nothing is unpickled."""
    from dgm.runs import load_model

    return load_model(run_dir, device=device)


def load_dataset(spec: str, transforms=(), **options):
    """Load the dataset addressed by ``spec`` (e.g. ``"mnist5k"``, ``"toy2d:gmm8"``, ``"npz:PATH"``)."""
    from dgm.data import load_dataset as _load

    return _load(spec, transforms=transforms, **options)
