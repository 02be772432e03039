"""Pictures of sequence samples: waveforms of audio, and text samples set in a monospaced font.

>>> import torch
>>> levels = torch.randint(0, 256, (4, 800)).float()       # μ-law samples of a wav: run
>>> plot_waveforms(levels, 8000, "samples.png")            # doctest: +SKIP
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np

from dgm.data.audio import mu_law_decode
from dgm.data.info import DataInfo
from dgm.data.sequence_io import as_levels
from dgm.viz.figures import plt, save_figure

MAX_WAVEFORMS = 6  # rows of a waveform picture
MAX_TEXTS = 8  # samples set in a text picture
TEXT_WIDTH = 80  # characters per line of a text picture


def plot_waveforms(samples, sample_rate: int, path, title: str | None = None, max_shown: int = MAX_WAVEFORMS) -> Path:
    """Save the waveforms of the first ``max_shown`` μ-law samples (n, T) (levels 0..255, decoded
    to amplitudes in [-1, 1]) against time in seconds, one row each."""
    x = mu_law_decode(as_levels(samples, 256))[:max_shown]  # (rows, T)
    rows, length = x.shape
    t = np.arange(length) / sample_rate
    fig, axes = plt.subplots(rows, 1, figsize=(8, 1.2 * rows + 0.6), sharex=True, squeeze=False)
    for i, ax in enumerate(axes[:, 0]):
        ax.plot(t, x[i], linewidth=0.6, color="C0")
        ax.set_ylim(-1.05, 1.05)
        ax.set_yticks([-1, 0, 1])
        ax.set_ylabel(f"#{i + 1}", rotation=0, labelpad=12, fontsize=8)
        ax.tick_params(labelsize=7)
    axes[-1, 0].set_xlabel(f"time (s) at {sample_rate} Hz", fontsize=8)
    if title:
        axes[0, 0].set_title(title, fontsize=9)
    return save_figure(fig, path)


def _shown_text(text: str, width: int) -> list[str]:
    """A sample as lines of at most ``width`` characters, line ends shown as ``↵`` and tabs as
    ``→`` so that every character keeps its place."""
    flat = text.replace("\n", "↵").replace("\t", "→").replace("\r", "␍")
    return textwrap.wrap(flat, width, replace_whitespace=False, drop_whitespace=False) or [""]


def plot_text_samples(
    samples, vocab: str, path, title: str | None = None, max_shown: int = MAX_TEXTS, width: int = TEXT_WIDTH
) -> Path:
    """Save the first ``max_shown`` text samples (n, T) (levels of ``vocab``) set in a monospaced
    font, ``width`` characters per line (the text files hold them exactly: ``samples.txt``)."""
    codes = as_levels(samples, len(vocab))[:max_shown]
    lines: list[str] = [title, ""] if title else []
    for i, row in enumerate(codes):
        lines.append(f"#{i + 1}")
        lines += ["  " + line for line in _shown_text("".join(vocab[c] for c in row), width)]
    columns = max(len(line) for line in lines)
    fig = plt.figure(figsize=(0.075 * columns + 0.4, 0.17 * len(lines) + 0.4))
    fig.text(0.01, 0.99, "\n".join(lines), family="monospace", fontsize=8, va="top", ha="left", parse_math=False)
    return save_figure(fig, path)


def plot_sequence_samples(samples, info: DataInfo, path, title: str | None = None) -> Path:
    """The picture of sequence samples (n, T): text set in type for text, waveforms for audio."""
    if info.vocab is not None:
        return plot_text_samples(samples, info.vocab, path, title=title)
    if info.sample_rate is None:
        raise ValueError(f"plot_sequence_samples needs text or audio data, got {info.describe()}")
    return plot_waveforms(samples, info.sample_rate, path, title=title)
