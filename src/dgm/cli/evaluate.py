"""``dgm eval`` and ``dgm compare``: metrics of a run, and one table over runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dgm.cli.common import (
    EtaOption,
    GuidanceOption,
    SamplerOption,
    StepsOption,
    check_seed,
    command,
    fail,
    print_metrics,
    sampling_options,
)
from dgm.errors import ConfigError, DgmError


@command("eval")
def eval_cmd(
    run: Annotated[Path, typer.Argument(metavar="RUN", help="Run directory.")],
    metrics: Annotated[
        str,
        typer.Option(
            "--metrics",
            "-m",
            metavar="GROUPS",
            help="Comma-separated metric groups, or 'all' for every one that applies: "
            "nll, fd, kid, prdc, classes, kl, mmd, modes, anomaly, probe, speed.",
        ),
    ] = "all",
    n: Annotated[
        int | None,
        typer.Option(
            "-n",
            metavar="N",
            help="Model samples for sample metrics (default: split size for images, 2000 for toy data).",
        ),
    ] = None,
    k: Annotated[
        int, typer.Option("-k", metavar="K", help="Importance samples for the bound of latent-variable models.")
    ] = 100,
    split: Annotated[str, typer.Option(metavar="SPLIT", help="Data split: test or val.")] = "test",
    seed: Annotated[int, typer.Option(metavar="S", help="Seed of the samples and of the dequantization noise.")] = 0,
    features: Annotated[
        str | None,
        typer.Option(
            metavar="SPACE",
            help="Image feature space: digits28, digits8 or random-conv (default: a digit classifier for "
            "28x28 and 8x8 grey images, random-conv for others; use random-conv for images that are not digits).",
        ),
    ] = None,
    sampler: SamplerOption = None,
    steps: StepsOption = None,
    eta: EtaOption = None,
    guidance: GuidanceOption = None,
    device: Annotated[str, typer.Option(metavar="DEVICE", help="cpu, cuda, cuda:N or mps.")] = "cpu",
) -> None:
    """Evaluate a run: compute metrics, merge them into its metrics.json and print them.

    Metric groups: nll (NLL and bits/dim, or ELBO and importance-weighted bounds), fd / kid / prdc /
    classes (sample quality in the features of a shipped digit classifier), kl / mmd / modes (toy
    2-D data against the analytic target), anomaly (AUROC against out-of-distribution sets), probe
    (linear probe on latents), speed (sampling time). Sample-based metrics record their n.

    Example: dgm eval runs/made --metrics nll,fd,prdc -n 1000

    Example: dgm eval runs/ddpm --metrics fd,speed --sampler ddim --steps 20
    """
    from dgm.eval import GROUPS, evaluate, parse_metrics
    from dgm.hardware import check_device
    from dgm.runs import load_dataset_of, load_model, write_metrics
    from dgm.sampling import check_sample_options

    try:
        if split not in ("test", "val"):
            raise ConfigError(f"--split must be test or val, got {split!r}")
        if n is not None and n < 2:
            raise ConfigError(f"-n must be at least 2, got {n}")
        if k < 1:
            raise ConfigError(f"-k must be at least 1, got {k}")
        check_seed(seed)
        groups = parse_metrics(metrics)
        model = load_model(run, device=check_device(device))
        options = check_sample_options(model, sampling_options(sampler, steps, eta, guidance))
        dataset = load_dataset_of(run)
        found = evaluate(
            model,
            dataset,
            groups,
            n=n,
            split=split,
            seed=seed,
            k=k,
            features=features,
            log=lambda m: typer.echo(f"... {m}", err=True),
            sample_options=options,
        )
        if not found:
            raise DgmError(f"no metric of {', '.join(GROUPS)} applies to model '{model.name}' on {dataset.spec}")
        write_metrics(run, found)
    except DgmError as e:
        fail(str(e))
    print_metrics(found)


@command()
def compare(
    runs: Annotated[list[Path], typer.Argument(metavar="RUN...", help="Run directories.")],
    md: Annotated[
        Path | None, typer.Option(metavar="FILE", help="Also write the table as Markdown to this file.")
    ] = None,
    csv: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="Also write the table as CSV (unformatted numbers) to this file."),
    ] = None,
    evaluate_missing: Annotated[
        bool,
        typer.Option(
            "--eval/--no-eval",
            help="Compute the compared metrics a run lacks (NLL, FD, precision/recall, sampling time) and save them.",
        ),
    ] = True,
    seed: Annotated[int, typer.Option(metavar="S", help="Seed of the samples when metrics are computed.")] = 0,
) -> None:
    """Compare runs of any family in one table: family, parameters, training time, NLL or bound,
    FD in the digit feature space (with its number of samples), precision/recall and sampling
    time per example.

    Example: dgm compare runs/made runs/fvsbn --md compare.md --csv compare.csv
    """
    from dgm.eval.compare import COLUMNS, comparable_data, compare_row, csv_table, markdown_table, missing_groups
    from dgm.io import write_text
    from dgm.runs import load_dataset_of, load_model, write_metrics

    try:
        check_seed(seed)
        if evaluate_missing:
            from dgm.eval import evaluate

            for run in runs:
                missing = missing_groups(run)
                if missing:
                    typer.echo(f"... evaluating {', '.join(missing)} for {run}", err=True)
                    write_metrics(run, evaluate(load_model(run), load_dataset_of(run), missing, seed=seed))
        rows = [compare_row(run) for run in runs]
        datas = {comparable_data(run) for run in runs}
        table = markdown_table(rows)
        if md:
            write_text(md, table)
        if csv:
            write_text(csv, csv_table(rows))
    except DgmError as e:
        fail(str(e))
    typer.echo(table, nl=False)
    if len(datas) > 1:
        typer.echo("note: these runs use different data; their numbers are not comparable across data.", err=True)
    legend = "; ".join(f"{header}: {meaning}" for _, header, meaning in COLUMNS if header and header != "run")
    typer.echo(f"\n{legend}")
