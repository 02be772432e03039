"""Reference points for sample-quality metrics in the shipped digit feature spaces.

    python benchmarks/feature_space_reference.py

For each dataset (grayscale, and binarized as a model trained with ``-t binarize`` sees it), the
test split (what ``dgm eval`` compares samples with) is scored against: itself (FD = 0), the
train split (real images a perfect model could have drawn; a random subset as large as the test split), a
copy with every image from half of the classes (mode dropping) and uniform noise images.
"""

from __future__ import annotations

import torch

import dgm
from dgm.eval.features import image_sample_metrics

SHOWN = ("fd_digits", "kid", "precision", "recall", "density", "coverage", "classifier_score")


def candidates(dataset, n: int) -> dict[str, torch.Tensor]:
    """Image sets (n, 1, H, W) in [0, 1], each as a model of ``dataset`` would produce them."""
    gen = torch.Generator().manual_seed(0)
    train = dataset.split("train")
    order = torch.randperm(train.n, generator=gen)  # splits may be sorted by class
    x, y = train.x[order], train.y[order]
    half = x[y < 5]
    levels = dataset.raw_info.levels
    noise = torch.randint(0, levels, (n, *dataset.raw_info.shape), generator=gen).float()
    sets = {"test itself": dataset.split("test").x, "train": x[:n], "train, classes 0-4": half[:n], "noise": noise}
    return {name: dataset.to_display(dataset.apply_transforms(x, gen)[0]) for name, x in sets.items()}


def main() -> None:
    print("| data | vs | " + " | ".join(SHOWN) + " |")
    print("|" + " --- |" * (len(SHOWN) + 2))
    for spec, transforms in (("mnist5k", ()), ("mnist5k", ("binarize",)), ("digits", ()), ("digits", ("binarize",))):
        dataset = dgm.load_dataset(spec, transforms=transforms)
        real = dataset.to_display(dataset.transformed("test", seed=0)[0])
        for name, images in candidates(dataset, len(real)).items():
            m = image_sample_metrics(real, images)
            cells = " | ".join(f"{m[k]['value']:.3g}" for k in SHOWN)
            print(f"| {spec} {' '.join(transforms)} | {name} | {cells} |")


if __name__ == "__main__":
    main()
