"""Representation quality: how much label information a model's latent code keeps.

The linear probe (Alain & Bengio 2017, "Understanding intermediate layers using linear classifier
probes"; the standard test of self-supervised representations since) encodes the train and test
splits, fits a multinomial logistic regression on standardised train latents with their labels,
and reports its test accuracy

    acc = (1/n) sum_i 1[argmax_c w_c . s(z_i) + b_c = y_i],   se = sqrt(acc (1 - acc) / n),

with ``s`` the train split's standardisation and ``se`` the binomial standard error. The same
probe on the raw pixels is the reference: a latent code worth having keeps at least what a
linear classifier finds in the pixels, in fewer dimensions.

>>> import dgm
>>> from dgm.runs import load_dataset_of
>>> model, ds = dgm.load("runs/vae"), load_dataset_of("runs/vae")   # model.has_latent is True
>>> metrics = linear_probe(model, ds)
>>> metrics["probe_accuracy"]["value"], metrics["probe_accuracy_pixels"]["value"]
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from dgm.errors import ConfigError, DataError
from dgm.models.base import GenerativeModel


def require_encoder(model: GenerativeModel) -> None:
    """Raise a ConfigError naming the fix unless the model declares an encoder."""
    if not model.has_encoder:
        raise ConfigError(
            f"model '{model.name or type(model).__name__}' has no encoder (has_encoder is False): codes of data "
            "need one; choose an autoencoder (ae, vae, ...)"
        )


@torch.no_grad()
def latent_means(model: GenerativeModel, x: Tensor, batch_size: int = 500, cond: Tensor | None = None) -> Tensor:
    """The code ``model.encode(x)`` of model-space ``x`` (N, *data.shape), as (N, K) on the CPU.

    ``encode`` may return a Tensor (a deterministic code) or a tuple whose first element is
    the mean of q(z | x) (e.g. ``(mean, logvar)``); the mean is used, so the code does not
    depend on sampling noise. Latents of any shape are flattened to K values per example.
    Conditional models get their labels ``cond`` (N,), passed to ``encode`` batch by batch.
    Computed in batches on the model's device, in eval mode (the mode is restored after).
    """
    require_encoder(model)
    if cond is not None and len(cond) != x.shape[0]:
        raise DataError(f"got {x.shape[0]} examples but {len(cond)} labels")
    was_training = model.training
    model.eval()
    out = []
    for i in range(0, x.shape[0], batch_size):
        xb = x[i : i + batch_size].to(model.device)
        if cond is None:
            z = model.encode(xb)
        else:
            z = model.encode(xb, cond=cond[i : i + batch_size].to(model.device))
        z = z[0] if isinstance(z, (tuple, list)) else z  # (mean, logvar, ...) -> mean
        out.append(z.reshape(z.shape[0], -1).float().cpu())  # (B, K)
    model.train(was_training)
    return torch.cat(out)


def probe_accuracy(z_train: Tensor, y_train: Tensor, z_test: Tensor, y_test: Tensor, max_iter: int, seed: int):
    """Test accuracy of a logistic regression fitted on standardised ``z_train`` (N, K).

    Returns (accuracy, binomial standard error sqrt(acc (1 - acc) / n)).
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=max_iter, random_state=seed))
    probe.fit(z_train.double().numpy(), y_train.numpy())
    acc = float((probe.predict(z_test.double().numpy()) == y_test.numpy()).mean())
    return acc, math.sqrt(acc * (1.0 - acc) / len(y_test))


def linear_probe(model: GenerativeModel, dataset, max_iter: int = 1000, seed: int = 0) -> dict:
    """Linear-probe test accuracy of the model's latent means and, as reference, of the raw pixels.

    Train and test splits are transformed (stochastic transforms seeded with ``seed``), encoded
    with :func:`latent_means` and probed with :func:`probe_accuracy`. A conditional model's
    encoder is given the true labels, so its probe measures how much of the label its code
    repeats (a CVAE's code should keep the rest: style, not class). Returns metrics.json
    entries ``probe_accuracy`` and ``probe_accuracy_pixels`` (value, se, unit, n, what).
    Raises ConfigError for a model without an encoder, DataError for data without labels.
    """
    require_encoder(model)
    train, test = dataset.split("train"), dataset.split("test")
    if train.y is None or test.y is None:
        raise DataError(f"the linear probe needs labelled data; '{dataset.spec}' has no labels")
    given = model.conditional  # a conditional encoder gets the labels
    z_train = latent_means(model, dataset.transformed("train", seed=seed)[0], cond=train.y if given else None)
    z_test = latent_means(model, dataset.transformed("test", seed=seed)[0], cond=test.y if given else None)
    acc, se = probe_accuracy(z_train, train.y, z_test, test.y, max_iter, seed)
    pix, pix_se = probe_accuracy(train.x.flatten(1), train.y, test.x.flatten(1), test.y, max_iter, seed)
    chance = f"chance {1 / len(torch.unique(train.y)):.3f}"
    return {
        "probe_accuracy": {
            "value": acc,
            "se": se,
            "unit": "fraction",
            "n": test.n,
            "what": f"test accuracy of logistic regression on the {z_train.shape[1]}-dim latent means ({chance})",
        },
        "probe_accuracy_pixels": {
            "value": pix,
            "se": pix_se,
            "unit": "fraction",
            "n": test.n,
            "what": f"the same probe on the {train.x[0].numel()} raw pixels, the reference ({chance})",
        },
    }
