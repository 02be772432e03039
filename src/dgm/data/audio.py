"""``wav:PATH``: a WAV file or a folder of them, as μ-law companded 8-bit audio (WaveNet).

``wav:clips?rate=8000&length=1024&stride=512``: PATH is one ``.wav`` file or a folder of them
(sorted by name; if the folder has sub-folders holding WAV files, each sub-folder is a class,
sorted names -> 0..K-1, as with ``folder:``). Each file is read with the standard library's
``wave`` (8-bit unsigned, 16-, 24- and 32-bit PCM), or with ``scipy.io.wavfile`` for float and
extensible-format WAVs, mixed to mono, resampled to ``rate`` Hz when the option is given (files
of different rates need it), μ-law companded to 256 levels (:func:`mu_law_encode`) and cut into
windows of ``length`` samples every ``stride`` samples (default: ``length``, no overlap).

Splits never share audio: with 10 files or more, whole files go to train/val/test (80/10/10 by a
fixed permutation of the sorted files); with fewer, each file is cut into contiguous blocks
(first 80% of its samples train, next 10% val, last 10% test) and windows are cut within them.

Why 1024 samples by default: the default ``wavenet`` (two stacks of dilations 1..128) sees the
511 samples before each one, so half of a window's positions have their whole receptive field
inside it; a step on a batch of 16 such windows (16k positions, each with a 256-way softmax)
took about 0.5 s on one busy CPU core with a 32-channel WaveNet, windows of 2048 about 1.6 s.
At 8 kHz, a good rate for CPU training, a window is 0.128 s.
"""

from __future__ import annotations

import math
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from dgm.data.folder import list_labelled_files
from dgm.data.info import DataInfo
from dgm.data.spec import DataSpec
from dgm.data.splits import SPLITS, Source, Split, make_split, random_split_indices
from dgm.data.windows import block_bounds, check_size, windows
from dgm.errors import DataError

MU = 255  # μ of the μ-law (ITU-T G.711): 256 levels
LEVELS = MU + 1
DEFAULT_LENGTH = 1024  # samples per example (see the module docstring)
SPLIT_BY_FILE = 10  # from this many files on, whole files are split 80/10/10
WAV_SUFFIX = ".wav"

# ----- μ-law companding --------------------------------------------------------------------------


def mu_law_encode(x, mu: int = MU) -> np.ndarray:
    """μ-law levels 0..mu (int64) of amplitudes ``x`` in [-1, 1] (values outside are clipped).

    f(x) = sign(x) ln(1 + mu |x|) / ln(1 + mu) in [-1, 1], then uniform quantisation of f to
    mu + 1 levels (van den Oord et al. 2016, WaveNet, section 2.2): level = round((f + 1) mu / 2).
    Silence maps to the middle level:

    >>> mu_law_encode([-1.0, 0.0, 1.0]).tolist()
    [0, 128, 255]
    """
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0)
    f = np.sign(x) * np.log1p(mu * np.abs(x)) / math.log1p(mu)
    return np.floor((f + 1.0) * mu / 2.0 + 0.5).astype(np.int64)


def mu_law_decode(levels, mu: int = MU) -> np.ndarray:
    """Amplitudes in [-1, 1] (float64) of μ-law ``levels`` 0..mu: the inverse of the companding,
    x = sign(f) ((1 + mu)^|f| - 1) / mu with f = 2 level / mu - 1.

    >>> mu_law_decode([0, 255]).tolist()
    [-1.0, 1.0]
    """
    f = 2.0 * np.clip(np.asarray(levels, dtype=np.float64), 0, mu) / mu - 1.0
    return np.sign(f) * (np.power(1.0 + mu, np.abs(f)) - 1.0) / mu  # power, not exp: exact at +-1


# ----- reading WAV files -------------------------------------------------------------------------


@dataclass(frozen=True)
class Audio:
    """One file's audio: mono amplitudes ``x`` (N,) float64 in [-1, 1], its sample ``rate`` and
    its number of ``channels`` before mixing."""

    x: np.ndarray
    rate: int
    channels: int


def pcm_to_float(data: bytes, width: int) -> np.ndarray:
    """Little-endian PCM frames of ``width`` bytes per sample as floats in [-1, 1): 8-bit is
    unsigned (offset 128), 16-, 24- and 32-bit are signed."""
    if width == 1:
        return (np.frombuffer(data, dtype=np.uint8).astype(np.float64) - 128.0) / 128.0
    if width == 2:
        return np.frombuffer(data, dtype="<i2") / 32768.0
    if width == 3:
        raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3).astype(np.int32)
        value = raw[:, 0] | (raw[:, 1] << 8) | (raw[:, 2] << 16)
        value = np.where(value >= 1 << 23, value - (1 << 24), value)  # sign of the top byte
        return value / float(1 << 23)
    if width == 4:
        return np.frombuffer(data, dtype="<i4") / float(1 << 31)
    raise ValueError(f"unsupported sample width {width}")


def _read_with_wave(path: Path) -> Audio:
    with wave.open(str(path), "rb") as f:
        channels, width, rate = f.getnchannels(), f.getsampwidth(), f.getframerate()
        data = f.readframes(f.getnframes())
    if width not in (1, 2, 3, 4):
        raise DataError(
            f"{path} has samples of {width} bytes; wav: reads 8-, 16-, 24- and 32-bit PCM (re-save it as 16-bit)"
        )
    frame = width * channels
    data = data[: len(data) - len(data) % frame]  # a truncated last frame
    x = pcm_to_float(data, width).reshape(-1, channels)
    return Audio(x.mean(axis=1), rate, channels)


def _read_with_scipy(path: Path, why: str) -> Audio:
    """Float and extensible-format WAVs, which the standard library's ``wave`` does not read."""
    try:
        from scipy.io import wavfile
    except ImportError:
        raise DataError(
            f"{path} is a WAV the standard library cannot read ({why}); reading it needs scipy "
            "(pip install scipy), or re-save it as 16-bit PCM"
        ) from None
    try:
        rate, data = wavfile.read(path)
    except Exception as err:  # scipy raises ValueError and others for files it cannot parse
        raise DataError(f"cannot read {path} as a WAV file ({why}; scipy: {str(err)[:80]})") from None
    data = np.asarray(data)
    scale = {"u": None, "i": float(2 ** (8 * data.dtype.itemsize - 1)), "f": 1.0}.get(data.dtype.kind)
    if data.dtype == np.uint8:
        x = (data.astype(np.float64) - 128.0) / 128.0
    elif scale is None:
        raise DataError(f"{path} holds samples of type {data.dtype}; re-save it as 16-bit PCM")
    else:
        x = data.astype(np.float64) / scale
    if not np.all(np.isfinite(x)):
        raise DataError(f"{path} holds NaN or infinite samples; re-save it")
    x = x.reshape(len(x), -1)
    return Audio(np.clip(x.mean(axis=1), -1.0, 1.0), int(rate), x.shape[1])


def read_wav(path: Path) -> Audio:
    """The mono audio of the WAV file ``path``; a DataError for a missing file, a file that is not
    a WAV, an unsupported sample format or a file without samples."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"WAV file not found: {path}; check the path")
    try:
        audio = _read_with_wave(path)
    except wave.Error as err:
        if "unknown format" not in str(err):
            raise DataError(f"{path} is not a WAV file ({err}); give RIFF/WAVE audio") from None
        audio = _read_with_scipy(path, str(err))
    except (EOFError, OSError) as err:
        raise DataError(f"{path} is not a WAV file or is truncated ({type(err).__name__}); re-save it") from None
    if len(audio.x) == 0:
        raise DataError(f"{path} holds no audio samples; remove it")
    if audio.rate < 1:
        raise DataError(f"{path} declares a sample rate of {audio.rate} Hz; re-save it")
    return audio


def resample(x: np.ndarray, rate: int, new_rate: int) -> np.ndarray:
    """``x`` sampled at ``rate`` Hz resampled to ``new_rate`` Hz: polyphase filtering
    (``scipy.signal.resample_poly``, which low-passes before decimating), or linear interpolation
    when scipy is missing."""
    if rate == new_rate:
        return x
    g = math.gcd(rate, new_rate)
    try:
        from scipy.signal import resample_poly
    except ImportError:
        n = max(1, round(len(x) * new_rate / rate))
        return np.interp(np.arange(n) * rate / new_rate, np.arange(len(x)), x)
    return np.clip(resample_poly(x, new_rate // g, rate // g), -1.0, 1.0)


def read_clip(path, sample_rate: int) -> Tensor:
    """The μ-law levels (N,) float32 of the WAV file ``path`` at ``sample_rate`` Hz (mono,
    resampled if need be): a prompt for completing audio with a run on ``wav:`` data."""
    audio = read_wav(Path(path))
    x = resample(audio.x, audio.rate, int(sample_rate))
    return torch.as_tensor(mu_law_encode(x), dtype=torch.float32)


# ----- files of a folder ------------------------------------------------------------------------


def list_wavs(root: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """WAV files under the folder ``root``, their labels (None when unlabelled) and class names:
    sub-folders holding WAV files are classes, else the files directly in ``root`` are used."""
    none_found = f"{root} holds no .wav files; give a WAV file or a folder of *.wav files"
    return list_labelled_files(root, frozenset({WAV_SUFFIX}), "WAV files", none_found)


def common_rate(files: list[Path], audios: list[Audio], spec: DataSpec) -> int:
    """The one sample rate of every file; files of different rates are a DataError naming two of
    them and the ``?rate=`` option."""
    other = next((i for i, a in enumerate(audios) if a.rate != audios[0].rate), None)
    if other is not None:
        a, b = audios[0].rate, audios[other].rate
        raise DataError(
            f"WAV files of different sample rates: {files[0].name} is {a} Hz but {files[other].name} is {b} Hz; "
            f"resample them all with ?rate=N, e.g. {spec.kind}:{spec.arg}?rate={min(a, b)}"
        )
    return audios[0].rate


# ----- windows and splits ------------------------------------------------------------------------


def _split_windows(levels: list[np.ndarray], labels: list[int] | None, length: int, stride: int, spec: DataSpec):
    by_file = len(levels) >= SPLIT_BY_FILE
    owner = {}
    if by_file:
        owner = {int(i): s for s, index in random_split_indices(len(levels), spec.text).items() for i in index}
    xs: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    ys: dict[str, list[np.ndarray]] = {s: [] for s in SPLITS}
    for i, values in enumerate(levels):
        if by_file:
            parts = {owner[i]: windows(values, length, stride)}
        else:
            parts = {s: windows(values[a:b], length, stride) for s, (a, b) in block_bounds(len(values)).items()}
        for s, w in parts.items():
            xs[s].append(w)
            ys[s].append(np.full(len(w), 0 if labels is None else labels[i], dtype=np.int64))
    splits = {}
    for s in SPLITS:
        x = np.concatenate(xs[s]) if xs[s] else np.empty((0, length))
        if len(x) == 0:
            raise DataError(_empty_split_message(s, levels, length, by_file, spec))
        splits[s] = make_split(x, None if labels is None else np.concatenate(ys[s]))
    return splits


def _empty_split_message(split: str, levels: list[np.ndarray], length: int, by_file: bool, spec: DataSpec) -> str:
    if by_file:
        return (
            f"the {split} split of '{spec.text}' gets no window of {length} samples: its files are shorter; "
            "use a smaller ?length= or longer files"
        )
    longest = max(len(v) for v in levels)
    block = longest - longest * 9 // 10
    return (
        f"the {split} split of '{spec.text}' gets no window of {length} samples: with fewer than {SPLIT_BY_FILE} "
        f"files each file is cut into blocks (80/10/10) and the longest file's 10% blocks hold {block} samples; "
        f"use ?length={block} or less, longer files, or at least {SPLIT_BY_FILE} files (split by file)"
    )


def _paths(spec: DataSpec) -> tuple[Path, list[Path], list[int] | None, list[str]]:
    if spec.arg and Path(spec.arg).expanduser().is_dir():
        root = spec.path(directory=True)
        return (root, *list_wavs(root))
    path = spec.path()
    return path, [path], None, []


def load_wav(spec: DataSpec) -> Source:
    """Load ``wav:PATH[?rate=HZ&length=T&stride=S]`` (see the module docstring)."""
    spec.check_options(("rate", "length", "stride"))
    rate = spec.int_option("rate", None)
    length = spec.int_option("length", DEFAULT_LENGTH, minimum=2)
    stride = spec.int_option("stride", length)
    root, files, labels, classes = _paths(spec)
    audios = [read_wav(f) for f in files]
    rate = rate or common_rate(files, audios, spec)
    levels = [mu_law_encode(resample(a.x, a.rate, rate)).astype(np.uint8) for a in audios]
    longest = max(len(v) for v in levels)
    if longest < length:
        raise DataError(
            f"the audio of {root} is too short for one window of {length} samples: the longest file has "
            f"{longest} samples ({longest / rate:.3g} s at {rate} Hz); use ?length={longest} or less"
        )
    check_size([len(v) for v in levels], length, stride, str(root))
    splits = _split_windows(levels, labels, length, stride, spec)
    info = DataInfo((length,), "discrete", levels=LEVELS, num_classes=len(classes), sample_rate=rate)
    notes = _notes(files, audios, levels, splits, rate, length, stride)
    return Source(info, splits, class_names=tuple(classes), notes=notes)


def _notes(files, audios: list[Audio], levels, splits: dict[str, Split], rate: int, length: int, stride: int):
    count = sum(split.n for split in splits.values())
    how = "whole files split 80/10/10" if len(files) >= SPLIT_BY_FILE else "blocks of each file: 80/10/10"
    notes = [
        f"{count} windows of {length} samples ({length / rate:.3g} s) every {stride} from "
        f"{len(files)} file{'s' if len(files) > 1 else ''}; {how}"
    ]
    resampled = sum(a.rate != rate for a in audios)
    if resampled:
        notes.append(f"resampled to {rate} Hz ({resampled} of {len(files)} files)")
    mixed = sum(a.channels > 1 for a in audios)
    if mixed:
        notes.append(f"mixed to mono ({mixed} of {len(files)} files)")
    short = sum(len(v) < length for v in levels)
    if short and len(files) > 1:
        notes.append(f"{short} files shorter than one window give none")
    return tuple(notes)
