"""Writing sequence samples as what they are: text files for ``text:`` runs, WAV files for ``wav:``.

Samples are levels (n, T) as models draw them (floats holding integers): characters of the run's
vocabulary (``DataInfo.vocab``) or μ-law levels 0..255 at ``DataInfo.sample_rate`` Hz. Every file
is written atomically (:func:`dgm.io.atomic_write`).

>>> import torch
>>> decode_text(torch.tensor([1.0, 2.0, 0.0]), " ab")
'ab '
"""

from __future__ import annotations

import wave
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dgm.data.audio import mu_law_decode
from dgm.errors import DataError
from dgm.io import atomic_write, write_text

GAP_SECONDS = 0.1  # silence between two samples in a WAV file (a window at 8 kHz is 0.128 s)
RULE = "-----"  # framing of the header line of each sample in a text file


def as_levels(samples, levels: int) -> np.ndarray:
    """Samples (n, T) or (T,) as an int64 array (n, T) of levels 0..levels-1; a DataError for
    values that are not such levels."""
    x = torch.as_tensor(samples).detach().to("cpu", torch.float64).numpy()
    x = x.reshape(1, -1) if x.ndim == 1 else x.reshape(len(x), -1)
    codes = np.rint(x)
    if x.size and (np.abs(x - codes).max() > 1e-3 or codes.min() < 0 or codes.max() > levels - 1):
        raise DataError(f"samples must be levels 0..{levels - 1}, got values in [{x.min():g}, {x.max():g}]")
    return codes.astype(np.int64)


def decode_text(levels, vocab: str) -> str:
    """The text of the levels (T,) of one sample: character ``vocab[level]`` at each position."""
    return "".join(vocab[i] for i in as_levels(levels, len(vocab))[0])


def _header(i: int, n: int, label: int | None, what: str = "sample") -> str:
    cls = "" if label is None else f" (class {label})"
    return f"{RULE} {what} {i} of {n}{cls} {RULE}"


def format_text_samples(samples, vocab: str, labels: Sequence[int] | Tensor | None = None) -> str:
    """Samples (n, T) as one text: each sample under a header line ``----- sample i of n -----``
    (with its class for conditional models), a blank line between samples."""
    codes = as_levels(samples, len(vocab))
    labels = None if labels is None else [int(c) for c in torch.as_tensor(labels).reshape(-1)]
    blocks = []
    for i, row in enumerate(codes):
        text = "".join(vocab[c] for c in row)
        blocks.append(f"{_header(i + 1, len(codes), None if labels is None else labels[i])}\n{text}\n")
    return "\n".join(blocks)


def write_text_samples(path, samples, vocab: str, labels: Sequence[int] | Tensor | None = None) -> Path:
    """Write samples (n, T) of a ``text:`` run to ``path`` as UTF-8 text (see
    :func:`format_text_samples`)."""
    return write_text(path, format_text_samples(samples, vocab, labels))


def to_pcm16(levels) -> np.ndarray:
    """μ-law levels (any shape) as 16-bit PCM values (int16) of the decoded amplitudes."""
    x = mu_law_decode(as_levels(levels, 256))
    return np.round(np.clip(x, -1.0, 1.0) * 32767.0).astype("<i2").reshape(np.shape(levels))


def write_pcm16(path, pcm: np.ndarray, sample_rate: int) -> Path:
    """Write mono 16-bit PCM values (N,) as a WAV file at ``sample_rate`` Hz, atomically."""
    if not isinstance(sample_rate, int) or sample_rate < 1:
        raise DataError(f"a WAV file needs a positive integer sample rate, got {sample_rate!r}")

    def write(tmp: str) -> None:
        with wave.open(tmp, "wb") as f:
            f.setnchannels(1)
            f.setsampwidth(2)
            f.setframerate(sample_rate)
            f.writeframes(np.asarray(pcm, dtype="<i2").tobytes())

    return atomic_write(path, write)


def join_with_silence(clips: Sequence[np.ndarray], gap: int) -> np.ndarray:
    """Clips of int16 PCM one after the other, ``gap`` zero samples between two clips."""
    silence = np.zeros(gap, dtype="<i2")
    parts = []
    for i, clip in enumerate(clips):
        parts += [silence, clip] if i else [clip]
    return np.concatenate(parts) if parts else np.zeros(0, dtype="<i2")


def write_wav(path, samples, sample_rate: int, gap: float = GAP_SECONDS) -> Path:
    """Write μ-law samples (n, T) of a ``wav:`` run as one mono 16-bit WAV file at ``sample_rate``
    Hz: the decoded samples one after the other, ``gap`` seconds of silence between two."""
    pcm = to_pcm16(as_levels(samples, 256))
    return write_pcm16(path, join_with_silence(list(pcm), round(gap * sample_rate)), sample_rate)


# ----- completions (``dgm complete``) -------------------------------------------------------------


def write_text_completions(path, done, vocab: str) -> Path:
    """Write completions (a :class:`dgm.apps.complete.Completions`: inputs ``x`` (B, T), the
    ``keep`` mask (T,) and ``samples`` (B, K, T)) as text: for each input, the given characters
    under ``----- given i of B -----``, then its K completions (whole sequences)."""
    given = as_levels(done.x, len(vocab))
    keep = torch.as_tensor(done.keep).reshape(-1).cpu().numpy()
    blocks = []
    for b in range(len(given)):
        text = "".join(vocab[c] for c in given[b][keep])
        blocks.append(f"{_header(b + 1, len(given), None, 'given')}\n{text}\n")
        for k, row in enumerate(as_levels(done.samples[b], len(vocab))):
            blocks.append(f"{RULE} completion {b + 1}.{k + 1} {RULE}\n{''.join(vocab[c] for c in row)}\n")
    return write_text(path, "\n".join(blocks))


def write_wav_completions(path, done, sample_rate: int, gap: float = GAP_SECONDS) -> Path:
    """Write audio completions (see :func:`write_text_completions`) as one WAV file: for each
    input, its given samples, then each of its K completions, ``gap`` seconds of silence between
    two clips and twice that between two inputs."""
    keep = torch.as_tensor(done.keep).reshape(-1).cpu().numpy()
    short = round(gap * sample_rate)
    per_input = []
    for b in range(done.x.shape[0]):
        clips = [to_pcm16(as_levels(done.x[b], 256)[0][keep])]
        clips += list(to_pcm16(as_levels(done.samples[b], 256)))
        per_input.append(join_with_silence(clips, short))
    return write_pcm16(path, join_with_silence(per_input, 2 * short), sample_rate)
