"""Sequence samples written as what they are (text, WAV) and pictured (type, waveforms); a run's
samples of text and audio data."""

from __future__ import annotations

import wave
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import dgm
from dgm.data.audio import mu_law_decode, mu_law_encode
from dgm.data.sequence_io import (
    as_levels,
    decode_text,
    format_text_samples,
    write_text_completions,
    write_text_samples,
    write_wav,
    write_wav_completions,
)
from dgm.errors import DataError
from dgm.viz.samples import save_samples_figure
from dgm.viz.sequence import plot_text_samples, plot_waveforms
from tests.data.wavs import chirp, write_wav_file

PNG = b"\x89PNG\r\n\x1a\n"
VOCAB = "\n $abc"


def _read_wav(path) -> tuple[wave._wave_params, np.ndarray]:
    with wave.open(str(path), "rb") as f:
        return f.getparams(), np.frombuffer(f.readframes(f.getnframes()), dtype="<i2")


def test_text_samples_are_blocks_under_header_lines(tmp_path):
    samples = torch.tensor([[3.0, 4.0, 1.0, 2.0], [5.0, 0.0, 5.0, 5.0]])
    path = write_text_samples(tmp_path / "s.txt", samples, VOCAB, labels=torch.tensor([0, 7]))
    assert path.read_text(encoding="utf-8") == (
        "----- sample 1 of 2 (class 0) -----\nab $\n\n----- sample 2 of 2 (class 7) -----\nc\ncc\n"
    )
    assert format_text_samples(samples[:1], VOCAB) == "----- sample 1 of 1 -----\nab $\n"
    assert decode_text(samples[1], VOCAB) == "c\ncc"


def test_values_that_are_not_levels_are_refused():
    with pytest.raises(DataError, match=r"levels 0..5, got values in \[0, 6\]"):
        as_levels(torch.tensor([[0.0, 6.0]]), len(VOCAB))
    with pytest.raises(DataError, match="levels 0..255"):
        as_levels(torch.tensor([[0.5, 2.0]]), 256)


def test_audio_samples_are_one_wav_with_silences_between(tmp_path):
    levels = torch.as_tensor(mu_law_encode(np.stack([chirp(0.05, 8000), -chirp(0.05, 8000)]))).float()
    path = write_wav(tmp_path / "s.wav", levels, 8000, gap=0.01)
    params, pcm = _read_wav(path)
    assert (params.nchannels, params.sampwidth, params.framerate) == (1, 2, 8000)
    assert len(pcm) == 2 * 400 + 80
    assert np.all(pcm[400:480] == 0)
    expected = mu_law_decode(levels[1].numpy()) * 32767
    assert np.abs(pcm[480:] - expected).max() <= 0.5 + 1e-9
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # written atomically


def test_completions_are_written_as_text_and_audio(tmp_path):
    x = torch.tensor([[3.0, 4.0, 0.0, 0.0]])
    keep = torch.tensor([True, True, False, False])
    samples = torch.tensor([[[3.0, 4.0, 5.0, 1.0], [3.0, 4.0, 2.0, 2.0]]])
    done = SimpleNamespace(x=x, keep=keep, samples=samples)  # the fields of dgm.apps.complete.Completions
    text = write_text_completions(tmp_path / "c.txt", done, VOCAB).read_text(encoding="utf-8")
    assert text == (
        "----- given 1 of 1 -----\nab\n\n----- completion 1.1 -----\nabc \n\n----- completion 1.2 -----\nab$$\n"
    )
    audio = SimpleNamespace(x=x + 100, keep=keep, samples=samples + 100)
    params, pcm = _read_wav(write_wav_completions(tmp_path / "c.wav", audio, 100, gap=0.1))
    assert params.framerate == 100 and len(pcm) == 2 + 10 + 4 + 10 + 4


def test_waveform_and_text_pictures_are_written(tmp_path):
    levels = torch.randint(0, 256, (9, 500), generator=torch.Generator().manual_seed(0)).float()
    data = plot_waveforms(levels, 8000, tmp_path / "w.png", title="chirps").read_bytes()
    assert data[:8] == PNG and len(data) > 10_000
    odd = torch.tensor([[2.0, 1.0, 0.0, 3.0] * 30])  # '$' (no mathtext), line ends, long lines wrapped
    data = plot_text_samples(odd, VOCAB, tmp_path / "t.png", title="made on text:$x$").read_bytes()
    assert data[:8] == PNG


def test_a_run_on_text_writes_samples_txt_beside_its_picture(tmp_path):
    (tmp_path / "t.txt").write_text("abc cab ba\n" * 60)
    ds = dgm.load_dataset(f"text:{tmp_path / 't.txt'}?length=12")
    model = dgm.build("independent", data=ds)
    out = save_samples_figure(model, ds, tmp_path / "run" / "samples.png", n=5)
    assert out.read_bytes()[:8] == PNG
    text = (tmp_path / "run" / "samples.txt").read_text(encoding="utf-8")
    blocks = text.split("----- sample ")[1:]
    assert len(blocks) == 5 and all(len(b.split("-----\n", 1)[1].rstrip("\n")) >= 11 for b in blocks)
    assert set(text) <= set("abc \n-012345sampleof")


def test_a_run_on_audio_writes_samples_wav_beside_its_waveforms(tmp_path):
    write_wav_file(tmp_path / "c.wav", chirp(0.5, 8000), 8000)
    ds = dgm.load_dataset(f"wav:{tmp_path / 'c.wav'}?length=40")
    model = dgm.build("independent", data=ds)
    save_samples_figure(model, ds, tmp_path / "run" / "samples.png")
    assert (tmp_path / "run" / "samples.png").read_bytes()[:8] == PNG
    params, pcm = _read_wav(tmp_path / "run" / "samples.wav")
    assert params.framerate == 8000 and len(pcm) == 16 * 40 + 15 * 800
