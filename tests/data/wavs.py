"""WAV files for tests, written with the standard library's ``wave``: tones and chirps."""

from __future__ import annotations

import math
import wave
from pathlib import Path

import numpy as np


def tone(seconds: float, rate: int, freq: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    """A sine of ``freq`` Hz, ``seconds`` long at ``rate`` Hz, values in [-amplitude, amplitude]."""
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * math.pi * freq * t)


def chirp(seconds: float, rate: int, f0: float = 100.0, f1: float = 1000.0, amplitude: float = 0.6) -> np.ndarray:
    """A linear chirp from ``f0`` to ``f1`` Hz."""
    t = np.arange(round(seconds * rate)) / rate
    return amplitude * np.sin(2 * math.pi * (f0 * t + (f1 - f0) * t * t / (2 * seconds)))


def pcm_bytes(x: np.ndarray, width: int) -> bytes:
    """Amplitudes (N,) or (N, channels) in [-1, 1] as interleaved little-endian PCM of ``width`` bytes."""
    x = np.clip(np.asarray(x, dtype=np.float64), -1.0, 1.0).reshape(-1)
    if width == 1:
        return np.round(x * 127 + 128).astype(np.uint8).tobytes()
    top = 2 ** (8 * width - 1) - 1
    values = np.round(x * top).astype(np.int64)
    if width == 3:
        u = values & 0xFFFFFF
        return np.stack([u & 0xFF, (u >> 8) & 0xFF, (u >> 16) & 0xFF], axis=1).astype(np.uint8).tobytes()
    return values.astype(f"<i{width}").tobytes()


def write_wav_file(path: Path, x: np.ndarray, rate: int, width: int = 2) -> Path:
    """Write amplitudes (N,) (mono) or (N, channels) as a PCM WAV of ``width`` bytes per sample."""
    channels = 1 if np.ndim(x) == 1 else np.shape(x)[1]
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as f:
        f.setnchannels(channels)
        f.setsampwidth(width)
        f.setframerate(rate)
        f.writeframes(pcm_bytes(x, width))
    return path
