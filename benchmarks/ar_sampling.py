"""Cached against naive sampling for the autoregressive family, in one process on the same work
(Ramachandran et al. 2017, "Fast Generation for Convolutional Autoregressive Models")::

    .venv/bin/python benchmarks/ar_sampling.py [--n 64] [--threads 1] [--models pixelcnn,...]

- Images: 64 binarized 28x28 digits from the default ``pixelcnn``, ``gated_pixelcnn``,
  ``transformer``, ``nade`` and ``made``. Naive sampling re-runs the whole network on the whole
  image (or, for the transformer, the whole prefix) for each of the 784 pixels; cached sampling
  computes only what the new pixel changes (one position per layer and cached layer inputs for
  the PixelCNNs, a key/value cache for the transformer, updated pre-activations for NADE and MADE).
- Audio: 16 000 samples (2 s at 8 kHz, 256 μ-law levels) from the default ``wavenet``, for
  1 and 8 sequences at once. Cached sampling keeps a queue of past activations per layer; the
  naive sampler re-runs the network over its receptive field R at every step, which costs the
  same at every step once the window is full, so it is timed on R and on R + ``--naive-steps``
  steps and extrapolated linearly (``--full`` times all 16 000 steps).

Both samplers get a generator with the same seed; the script prints whether they drew the same
samples. Sampling time does not depend on the weights, so the models are freshly initialised.
The naive image samplers take minutes (the transformer about 6 minutes on one thread).
"""

from __future__ import annotations

import argparse
import time

import torch

import dgm

IMAGE_MODELS = ("pixelcnn", "gated_pixelcnn", "transformer", "nade", "made")
DIGITS = dgm.DataInfo((1, 28, 28), "binary", 2)


def timed(model, n: int, seed: int, cached: bool) -> tuple[float, torch.Tensor]:
    """Seconds to draw ``n`` examples with ``model.generate`` and the examples."""
    start = time.perf_counter()
    with torch.no_grad():
        x, _ = model.generate(n, None, torch.Generator().manual_seed(seed), 1.0, cached)
    return time.perf_counter() - start, x


def size(model) -> str:
    return f"{sum(p.numel() for p in model.parameters()):,} parameters"


def images(name: str, n: int) -> None:
    model = dgm.build(name, data=DIGITS).eval()
    t_cached, x_cached = timed(model, n, 0, cached=True)
    t_naive, x_naive = timed(model, n, 0, cached=False)
    same = torch.equal(x_naive, x_cached)
    print(
        f"{name:15s} ({size(model)}): {n} images 28x28: naive {t_naive:7.1f} s, cached {t_cached:6.2f} s, "
        f"naive/cached {t_naive / t_cached:6.1f}x, same samples: {same}",
        flush=True,
    )


def audio(samples: int) -> dgm.DataInfo:
    return dgm.DataInfo((samples,), "discrete", 256, sample_rate=8000)


def with_length(model, samples: int):
    """The same WaveNet for sequences of ``samples`` values (its weights do not depend on T)."""
    other = dgm.build("wavenet", data=audio(samples)).eval()
    other.load_state_dict(model.state_dict())
    return other


def wavenet(samples: int, batches: list[int], naive_steps: int, full: bool) -> None:
    model = dgm.build("wavenet", data=audio(samples)).eval()
    field = model.receptive_field
    for n in batches:
        t_cached, x_cached = timed(model, n, n, cached=True)
        if full:
            t_naive, x_naive = timed(model, n, n, cached=False)
            how = "timed on every step"
        else:
            t_fill, _ = timed(with_length(model, field), n, n, cached=False)
            t_part, x_naive = timed(with_length(model, field + naive_steps), n, n, cached=False)
            per_step = (t_part - t_fill) / naive_steps
            t_naive = t_fill + per_step * (samples - field)
            how = f"extrapolated from {field} + {naive_steps} steps at {1000 * per_step:.2f} ms/step"
        same = torch.equal(x_naive, x_cached[:, : x_naive.shape[1]])
        print(
            f"wavenet ({size(model)}, receptive field {field}): {n} x {samples} samples: naive {t_naive:7.1f} s "
            f"({how}), cached {t_cached:6.1f} s, naive/cached {t_naive / t_cached:6.1f}x, "
            f"same values on the first {x_naive.shape[1]}: {same}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=64, help="images per sampler call")
    parser.add_argument("--models", default=",".join((*IMAGE_MODELS, "wavenet")))
    parser.add_argument("--samples", type=int, default=16_000, help="audio samples per sequence")
    parser.add_argument("--audio-batches", default="1,8", help="sequences drawn at once, one run each")
    parser.add_argument("--naive-steps", type=int, default=300)
    parser.add_argument("--full", action="store_true", help="time the naive WaveNet on every step")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} thread(s)")
    for name in args.models.split(","):
        if name == "wavenet":
            batches = [int(v) for v in args.audio_batches.split(",")]
            wavenet(args.samples, batches, args.naive_steps, args.full)
        elif name in IMAGE_MODELS:
            images(name, args.n)
        else:
            raise SystemExit(f"unknown model {name!r}; choose from {', '.join((*IMAGE_MODELS, 'wavenet'))}")


if __name__ == "__main__":
    main()
