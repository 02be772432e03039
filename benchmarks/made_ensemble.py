"""Test NLL of a trained MADE run as a function of the number of mask sets in its ensemble.

    python benchmarks/made_ensemble.py runs/made-mnist5k

MADE's ``log_prob`` is the exact mixture over ``eval_masks`` mask sets; this rebuilds the run's
model with eval_masks = 1, 2, 4, ... and reports the test NLL of each.
"""

from __future__ import annotations

import sys
from dataclasses import replace

import torch

import dgm
from dgm.eval.likelihood import likelihood_metrics
from dgm.runs import load_dataset_of


def main(run_dir: str) -> None:
    trained = dgm.load(run_dir)
    dataset = load_dataset_of(run_dir)
    k = 1
    print("eval_masks  test NLL (nats)")
    while k <= trained.config.num_masks:
        model = type(trained)(replace(trained.config, eval_masks=k))
        model.load_state_dict(trained.state_dict())
        nll = likelihood_metrics(model.eval(), dataset)["nll"]
        print(f"{k:>10}  {nll['value']:.2f} ± {nll['se']:.2f}")
        k *= 2


if __name__ == "__main__":
    torch.set_num_threads(2)
    main(sys.argv[1] if len(sys.argv) > 1 else "runs/made-mnist5k")
