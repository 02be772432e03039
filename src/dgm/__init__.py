"""dgm: deep generative models behind one API and one CLI.

>>> import dgm
>>> ds = dgm.load_dataset("mnist5k", transforms=["binarize"])
>>> model = dgm.build("made", data=ds, hidden=(500,))
>>> x = model.sample(4)

Training needs PyTorch Lightning and lives in :mod:`dgm.train`; importing ``dgm`` does not
import it.
"""

from dgm.data.info import DataInfo
from dgm.errors import ConfigError, DataError, DgmError, RunError
from dgm.registry import build, list_models, register

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
