"""Train one of dgm's shipped digit classifiers and write NAME.safetensors + NAME.json.

The classifier learns from the train split only; the val split picks the epoch (mean of the
grayscale and binarized val accuracies); the test split is only measured, for the record.
Inputs are images in [0, 1] (``Dataset.to_display``). Every training image is randomly shown
as grayscale, thresholded (x > 0.5) or stochastically binarized (Bernoulli(x)), with equal
probability, and shifted by up to ``--max-shift`` pixels, so that the features of generated
binary images and of grayscale images are alike. Seeded, deterministic, CPU only:

    python scripts/train_digit_classifier.py --data mnist5k --seed 0 --out src/dgm/eval/weights
    python scripts/train_digit_classifier.py --data digits --seed 0 --out src/dgm/eval/weights
"""

from __future__ import annotations

import argparse
import copy
import datetime
import hashlib
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor

from dgm.data import load_dataset
from dgm.eval.digit_classifier import DigitClassifier, DigitClassifierConfig, config_dict

# data spec -> (classifier name, architecture, default epochs, default max shift in pixels)
SETUPS = {
    "mnist5k": ("digits28", DigitClassifierConfig(28, (16, 32, 64), 64), 30, 2),
    "digits": ("digits8", DigitClassifierConfig(8, (32, 64), 64), 150, 1),
}


def random_binarize(x: Tensor, generator: torch.Generator) -> Tensor:
    """Each image kept grayscale, thresholded (x > 0.5) or Bernoulli(x), with probability 1/3 each."""
    mode = torch.randint(0, 3, (x.shape[0], 1, 1, 1), generator=generator)
    thresholded = (x > 0.5).float()
    stochastic = (torch.rand(x.shape, generator=generator) < x).float()
    return torch.where(mode == 0, x, torch.where(mode == 1, thresholded, stochastic))


def random_shift(x: Tensor, max_shift: int, generator: torch.Generator) -> Tensor:
    """Shift each image (N, 1, H, W) by integers dy, dx uniform in [-max_shift, max_shift], zero fill."""
    if max_shift == 0:
        return x
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4)  # (N, 1, H + 2s, W + 2s)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n, 1), generator=generator)
    rows = torch.arange(h) + dy  # (N, H)
    cols = torch.arange(w) + dx  # (N, W)
    out = padded[torch.arange(n)[:, None, None], 0, rows[:, :, None], cols[:, None, :]]  # (N, H, W)
    return out[:, None]


@torch.no_grad()
def accuracy(model: DigitClassifier, x: Tensor, y: Tensor) -> float:
    model.eval()
    return int((model(x).argmax(1) == y).sum()) / y.shape[0]


def accuracies(model: DigitClassifier, x: Tensor, y: Tensor, seed: int = 0) -> dict[str, float]:
    """Accuracy on grayscale images, thresholded (x > 0.5) ones, and Bernoulli(x) ones drawn with ``seed``."""
    stochastic = (torch.rand(x.shape, generator=torch.Generator().manual_seed(seed)) < x).float()
    return {
        "grayscale": accuracy(model, x, y),
        "binarized": accuracy(model, (x > 0.5).float(), y),
        "stochastic_binarized": accuracy(model, stochastic, y),
    }


def train(args: argparse.Namespace) -> tuple[DigitClassifier, dict]:
    """Train with AdamW and a cosine learning rate; return the best-on-val model and its record."""
    name, config, _, _ = SETUPS[args.data]
    ds = load_dataset(args.data)
    data = {s: (ds.to_display(ds.split(s).x), ds.split(s).y) for s in ("train", "val", "test")}
    torch.manual_seed(args.seed)  # weight init and dropout
    gen = torch.Generator().manual_seed(args.seed)  # shuffling and augmentation
    model = DigitClassifier(config)
    x_train, y_train = data["train"]
    steps_per_epoch = -(-x_train.shape[0] // args.batch_size)
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.epochs * steps_per_epoch)
    best, best_score, best_epoch = None, -1.0, 0
    for epoch in range(1, args.epochs + 1):
        model.train()
        for idx in torch.randperm(x_train.shape[0], generator=gen).split(args.batch_size):
            x = random_shift(random_binarize(x_train[idx], gen), args.max_shift, gen)
            loss = F.cross_entropy(model(x), y_train[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        val = accuracies(model, *data["val"])
        score = (val["grayscale"] + val["binarized"]) / 2
        if score > best_score:
            best, best_score, best_epoch = copy.deepcopy(model.state_dict()), score, epoch
        print(f"epoch {epoch:3d}  loss {loss.item():.4f}  val {val['grayscale']:.4f} / {val['binarized']:.4f}")
    model.load_state_dict(best)
    record = {
        "name": name,
        "command": "python scripts/train_digit_classifier.py " + shlex.join(sys.argv[1:]),
        "seed": args.seed,
        "data": {
            "spec": args.data,
            "train_split": "train",
            "selection_split": "val",
            "test_split": "test",
            "sizes": {s: int(y.shape[0]) for s, (_, y) in data.items()},
            "input": "Dataset.to_display images in [0, 1] = raw / (levels - 1)",
        },
        "augmentation": "per image: grayscale, x > 0.5 or Bernoulli(x) with prob. 1/3 each; "
        f"integer shift in [-{args.max_shift}, {args.max_shift}] px per axis, zero fill",
        "training": {"epochs": args.epochs, "best_epoch": best_epoch, "batch_size": args.batch_size, "lr": args.lr},
        "config": config_dict(config),
        "num_params": sum(p.numel() for p in model.parameters()),
        "feature_dim": config.feature_dim,
        "val_accuracy": accuracies(model, *data["val"]),
        "test_accuracy": accuracies(model, *data["test"]),
        "torch_version": torch.__version__,
        "python_version": platform.python_version(),
        "threads": torch.get_num_threads(),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }
    return model, record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=sorted(SETUPS), required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="default: 30 for mnist5k, 150 for digits")
    parser.add_argument("--max-shift", type=int, help="default: 2 px for mnist5k, 1 px for digits")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads; fixed for bit-reproducible weights")
    parser.add_argument("--out", type=Path, default=Path("src/dgm/eval/weights"))
    args = parser.parse_args(argv)
    _, _, epochs, max_shift = SETUPS[args.data]
    args.epochs = epochs if args.epochs is None else args.epochs
    args.max_shift = max_shift if args.max_shift is None else args.max_shift
    torch.set_num_threads(args.threads)
    torch.use_deterministic_algorithms(True)
    start = time.perf_counter()
    model, record = train(args)
    record["train_seconds"] = round(time.perf_counter() - start, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    weights = args.out / f"{record['name']}.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, weights, metadata={"name": record["name"]})
    record["weights_file"] = weights.name
    record["weights_sha256"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    record["weights_bytes"] = weights.stat().st_size
    (args.out / f"{record['name']}.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({k: record[k] for k in ("num_params", "val_accuracy", "test_accuracy", "train_seconds")}))


if __name__ == "__main__":
    main()
