"""The ``dgm`` command: a thin layer over the library, one module per group of commands.

- :mod:`dgm.cli.catalog`: ``dgm list``
- :mod:`dgm.cli.train`: ``dgm train``
- :mod:`dgm.cli.sample`: ``dgm sample``
- :mod:`dgm.cli.evaluate`: ``dgm eval``, ``dgm compare``
- :mod:`dgm.cli.latent`: ``dgm latent-map``, ``dgm interpolate``, ``dgm attribute``, ``dgm reconstruct``
- :mod:`dgm.cli.complete`: ``dgm complete``
- :mod:`dgm.cli.inpaint`: ``dgm inpaint``
- :mod:`dgm.cli.plot`: ``dgm plot``

Only ``dgm train`` imports PyTorch Lightning; the other commands start fast. Every error a user
can cause is one line on standard error and exit code 2; results go to standard output,
progress to standard error.
"""

from __future__ import annotations

from dgm.cli import catalog, complete, evaluate, inpaint, latent, plot, sample, train
from dgm.cli.common import app

__all__ = ["app", "main"]
# importing them registers their commands on app
_COMMANDS = (catalog, train, sample, evaluate, latent, complete, inpaint, plot)


def main() -> int:
    """Entry point of the ``dgm`` console script."""
    app(prog_name="dgm")
    return 0
