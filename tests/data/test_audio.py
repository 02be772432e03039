"""``wav:PATH``: μ-law companding, WAV files of every PCM width, stereo, resampling, folders split
by file or into blocks, and clear errors for files that are not usable audio."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from dgm.data import load_dataset
from dgm.data.audio import LEVELS, mu_law_decode, mu_law_encode, read_clip, read_wav, resample
from dgm.errors import DataError
from tests.data.wavs import chirp, tone, write_wav_file

RATE = 8000


# ----- μ-law ----------------------------------------------------------------------------------


def test_mu_law_maps_silence_to_the_middle_and_the_extremes_to_the_ends():
    assert mu_law_encode([0.0]).tolist() == [128]  # levels 0..255: the middle is 127.5, rounded up
    assert mu_law_encode([-1.0, 1.0, -5.0, 5.0]).tolist() == [0, 255, 0, 255]  # clipped outside [-1, 1]
    assert abs(mu_law_decode(128)) < 1e-4
    assert mu_law_decode([0, 255]).tolist() == [-1.0, 1.0]


def test_mu_law_is_monotonic_and_decode_inverts_encode_on_the_levels():
    x = np.linspace(-1, 1, 20001)
    codes = mu_law_encode(x)
    assert np.all(np.diff(codes) >= 0) and set(codes.tolist()) == set(range(LEVELS))
    grid = mu_law_decode(np.arange(LEVELS))
    assert np.all(np.diff(grid) > 0)
    assert mu_law_encode(grid).tolist() == list(range(LEVELS))
    assert np.allclose(grid, -grid[::-1])  # odd symmetry about the middle


def test_mu_law_round_trip_error_is_within_one_quantisation_step():
    x = np.random.default_rng(0).uniform(-1, 1, 50_000)
    codes = mu_law_encode(x)
    grid = mu_law_decode(np.arange(LEVELS))
    step = np.diff(grid)  # distance between the values of level k and k + 1
    local = np.maximum(step[np.clip(codes - 1, 0, LEVELS - 2)], step[np.clip(codes, 0, LEVELS - 2)])
    error = np.abs(mu_law_decode(codes) - x)
    assert np.all(error <= local)
    # x lies in the cell of its level: between the values of the half levels around it
    assert np.all(mu_law_decode(codes - 0.5) <= x + 1e-12) and np.all(x <= mu_law_decode(codes + 0.5) + 1e-12)
    assert error[np.abs(x) < 0.01].max() < 5e-4 < 0.01 < error.max()  # fine steps near silence: the point of μ-law
    assert step.max() > 50 * step.min()


# ----- reading files --------------------------------------------------------------------------


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_pcm_files_of_every_width_read_back(tmp_path, width):
    x = chirp(0.1, RATE)
    audio = read_wav(write_wav_file(tmp_path / "c.wav", x, RATE, width))
    assert audio.rate == RATE and audio.channels == 1 and len(audio.x) == len(x)
    assert np.abs(audio.x - x).max() <= 2.0 / 2 ** (8 * width - 1)  # one quantisation step


def test_stereo_is_mixed_to_mono(tmp_path):
    x = tone(0.1, RATE)
    audio = read_wav(write_wav_file(tmp_path / "s.wav", np.stack([x, np.zeros_like(x)], axis=1), RATE))
    assert audio.channels == 2
    assert np.abs(audio.x - x / 2).max() < 1e-4
    ds = load_dataset(f"wav:{tmp_path / 's.wav'}?length=64")
    assert "mixed to mono (1 of 1 files)" in ds.describe()


def test_float_wavs_are_read_through_scipy(tmp_path):
    from scipy.io import wavfile

    x = chirp(0.1, RATE).astype(np.float32)
    wavfile.write(tmp_path / "f.wav", RATE, x)
    audio = read_wav(tmp_path / "f.wav")
    assert audio.rate == RATE and np.allclose(audio.x, x, atol=1e-6)


def test_resampling_keeps_the_pitch():
    x = tone(0.5, 16000, freq=440)
    y = resample(x, 16000, 8000)
    assert len(y) == len(x) // 2
    crossings = np.count_nonzero(np.diff(np.signbit(y)))
    assert abs(crossings - 2 * 440 * 0.5) <= 2


def test_read_clip_gives_levels_at_the_run_rate(tmp_path):
    path = write_wav_file(tmp_path / "c.wav", tone(0.1, 16000), 16000)
    levels = read_clip(path, RATE)
    assert levels.dtype == torch.float32 and levels.shape == (800,)
    assert levels.min() >= 0 and levels.max() <= 255 and levels.equal(levels.round())


# ----- datasets -------------------------------------------------------------------------------


def test_one_file_is_cut_into_blocks_and_windows_of_mu_law_levels(tmp_path):
    x = chirp(1.0, RATE)
    path = write_wav_file(tmp_path / "c.wav", x, RATE)
    ds = load_dataset(f"wav:{path}?length=100")
    info = ds.info
    assert info.shape == (100,) and info.levels == 256 and info.sample_rate == RATE and info.support == "discrete"
    assert ds.split("train").n == 64 and ds.split("val").n == 8 and ds.split("test").n == 8
    codes = mu_law_encode(read_wav(path).x)
    assert ds.split("train").x[3].numpy().tolist() == codes[300:400].tolist()
    assert ds.split("val").x[0].numpy().tolist() == codes[6400:6500].tolist()  # val block starts at 80%
    assert ds.split("test").x[-1].numpy().tolist() == codes[7900:8000].tolist()
    assert "blocks of each file" in ds.describe()


def test_files_of_different_rates_need_the_rate_option(tmp_path):
    write_wav_file(tmp_path / "a.wav", tone(1.0, 8000), 8000)
    write_wav_file(tmp_path / "b.wav", tone(1.0, 16000), 16000)
    with pytest.raises(DataError, match=r"a.wav is 8000 Hz but b.wav is 16000 Hz; resample them all with \?rate=N"):
        load_dataset(f"wav:{tmp_path}?length=64")
    ds = load_dataset(f"wav:{tmp_path}?length=64&rate=8000")
    assert ds.info.sample_rate == 8000
    assert "resampled to 8000 Hz (1 of 2 files)" in ds.describe()
    train = ds.split("train").n
    assert train == 2 * (6400 // 64)  # both files, each 8000 samples at 8 kHz


def test_ten_files_or_more_are_split_by_file(tmp_path):
    for i in range(12):  # each file holds one constant level, so windows name their file
        write_wav_file(tmp_path / f"f{i:02d}.wav", np.full(300, -0.9 + 0.15 * i), RATE)
    ds = load_dataset(f"wav:{tmp_path}?length=100")
    files = {name: {int(v) for v in ds.split(name).x.unique()} for name in ("train", "val", "test")}
    assert sum(map(len, files.values())) == 12 and not (files["train"] & (files["val"] | files["test"]))
    assert (len(files["train"]), len(files["val"]), len(files["test"])) == (10, 1, 1)
    assert ds.split("train").n == 30 and "whole files split 80/10/10" in ds.describe()
    again = load_dataset(f"wav:{tmp_path}?length=100")
    assert again.split("test").x.equal(ds.split("test").x)


def test_class_sub_folders_are_labels(tmp_path):
    write_wav_file(tmp_path / "low" / "a.wav", tone(1.0, RATE, 200), RATE)
    write_wav_file(tmp_path / "high" / "b.wav", tone(1.0, RATE, 900), RATE)
    ds = load_dataset(f"wav:{tmp_path}?length=200")
    assert ds.class_names == ("high", "low") and ds.info.num_classes == 2
    assert set(ds.split("test").y.tolist()) == {0, 1}


def test_transforms_are_refused_on_audio(tmp_path):
    path = write_wav_file(tmp_path / "c.wav", tone(1.0, RATE), RATE)
    with pytest.raises(DataError, match="transform 'dequantize' does not apply to audio of 512 samples at 8000 Hz"):
        load_dataset(f"wav:{path}?length=512", transforms=["dequantize"])


def _bad_width_wav(path):
    """A WAV whose header declares 40-bit samples (5 bytes)."""
    data = bytes(50)
    fmt = struct.pack("<HHIIHH", 1, 1, RATE, RATE * 5, 5, 40)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: p.write_bytes(b"this is not audio at all" * 10), "is not a WAV file (file does not start with RIFF"),
        (lambda p: p.write_bytes(b"RIFF\x10\x00"), "is not a WAV file"),
        (lambda p: write_wav_file(p, np.zeros(0), RATE), "holds no audio samples"),
        (lambda p: write_wav_file(p, tone(0.01, RATE), RATE), "too short for one window of 1024 samples"),
        (_bad_width_wav, "has samples of 5 bytes; wav: reads 8-, 16-, 24- and 32-bit PCM"),
    ],
)
def test_unusable_files_are_refused_naming_the_problem(tmp_path, make, needle):
    make(tmp_path / "x.wav")
    with pytest.raises(DataError, match=None) as err:
        load_dataset(f"wav:{tmp_path / 'x.wav'}")
    assert needle in str(err.value)


def test_missing_paths_empty_folders_and_short_blocks_are_refused(tmp_path):
    with pytest.raises(DataError, match="file not found"):
        load_dataset(f"wav:{tmp_path / 'none.wav'}")
    with pytest.raises(DataError, match="holds no .wav files"):
        load_dataset(f"wav:{tmp_path}")
    write_wav_file(tmp_path / "a.wav", tone(0.2, RATE), RATE)  # 1600 samples: 10% blocks of 160
    with pytest.raises(DataError, match=r"val split .* 10% blocks hold 160 samples; use \?length=160 or less"):
        load_dataset(f"wav:{tmp_path}?length=500")
    with pytest.raises(DataError, match="unknown option 'size'"):
        load_dataset(f"wav:{tmp_path}?size=3")
    with pytest.raises(DataError, match="did you mean wav:"):
        load_dataset(str(tmp_path / "a.wav"))
