"""What every command shares: the Typer app, one-line errors, tables of metrics."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperArgument, TyperCommand

from dgm.errors import ConfigError

PICTURE_SUFFIXES = (".png", ".pdf", ".svg")  # files a picture command writes


class Command(TyperCommand):
    """A command whose help names arguments plainly (``RUN``, not ``RUN <path>``)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for param in self.params:
            if isinstance(param, TyperArgument):
                param.display_type_rich = _no_type


def _no_type(ctx) -> None:
    return None


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Deep generative models: train, sample, evaluate and compare them on the same data.",
)


def command(name: str | None = None):
    """Register a ``dgm`` command (plain help, see :class:`Command`)."""
    return app.command(name, cls=Command)


def fail(message: str, code: int = 2) -> None:
    """Print ``error: message`` on standard error and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def check_seed(seed: int | None) -> None:
    from dgm.train.config import MAX_SEED

    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"--seed must be an integer in 0..{MAX_SEED}, got {seed}")


SamplerOption = Annotated[
    str | None,
    typer.Option(metavar="NAME", help="Diffusion sampler: ddpm (ancestral) or ddim (default: the model's, ddim)."),
]
StepsOption = Annotated[
    int | None,
    typer.Option(metavar="K", help="Diffusion sampling steps, at most the model's T (default: the model's, 50)."),
]
EtaOption = Annotated[
    float | None,
    typer.Option(metavar="ETA", help="DDIM's eta in [0, 1]: 0 deterministic, 1 stochastic (default: the model's, 1)."),
]
GuidanceOption = Annotated[
    float | None,
    typer.Option(
        metavar="W",
        help="Classifier-free guidance scale of conditional diffusion models: 0 unconditional, 1 conditional, "
        "above 1 closer to the label.",
    ),
]


def sampling_options(sampler: str | None, steps: int | None, eta: float | None, guidance: float | None) -> dict:
    """The sampling options given on the command line (None for those left out)."""
    return {"sampler": sampler, "steps": steps, "eta": eta, "guidance": guidance}


def print_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print ``rows`` as an aligned plain-text table."""
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) if cells else len(c) for i, c in enumerate(columns)]
    typer.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        typer.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return " ".join(_format_value(v) for v in value)
    return str(value)


def _spread(entry: dict) -> str:
    """'0.85' for a standard error, 'std 1.9' for a spread; '' when the entry has neither."""
    if isinstance(entry.get("se"), float):
        return f"{entry['se']:.2g}"
    return f"std {entry['std']:.2g}" if isinstance(entry.get("std"), float) else ""


def print_metrics(metrics: dict[str, Any]) -> None:
    """Print metrics.json entries as a table: name, value, standard error (or spread), number of
    examples or samples it was computed on, unit, meaning."""
    rows = [
        {
            "metric": k,
            "value": _format_value(v.get("value")),
            "±": _spread(v),
            "n": v.get("n", ""),
            "unit": v.get("unit", ""),
            "what": v.get("what", ""),
        }
        for k, v in metrics.items()
        if isinstance(v, dict)
    ]
    if rows:
        print_table(rows, ["metric", "value", "±", "n", "unit", "what"])
