"""``dgm list``: the models with their declared capabilities, and the datasets."""

from __future__ import annotations

import typer

from dgm.cli.common import command, print_table


@command("list")
def list_cmd() -> None:
    """List models (family and capabilities) and datasets.

    Example: dgm list
    """
    from dgm.data import list_datasets
    from dgm.registry import list_models

    rows = [
        {
            **m,
            "data": ",".join(m["data"]),
            "latent": "yes" if m["latent"] else "",
            "conditional": "yes" if m["conditional"] else "",
        }
        for m in list_models()
    ]
    typer.echo("Models")
    print_table(rows, ["name", "family", "density", "latent", "conditional", "data", "summary"])
    typer.echo("\nDatasets")
    datasets = [{**d, "analytic density": "yes" if d["density"] == "exact" else ""} for d in list_datasets()]
    print_table(datasets, ["spec", "analytic density", "summary"])
