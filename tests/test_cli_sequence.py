"""From the command line: training on text and audio leaves samples.txt / samples.wav that decode,
and ``dgm sample`` writes text and WAV files only for runs on that kind of data."""

from __future__ import annotations

import json
import re
import wave

import pytest

import dgm
from dgm.config import to_dict
from dgm.runs import RunRecord, save_weights, write_record
from tests.conftest import assert_one_line_error, invoke
from tests.data.wavs import chirp, tone, write_wav_file

TRAIN = ("train", "--accelerator", "cpu", "--steps", "3", "--batch-size", "8")
LENGTH = 16


def _train(model: list[str], data: str, run) -> None:
    result = invoke([*TRAIN, *model, "--data", data, "--out", str(run)])
    assert result.exit_code == 0, result.output


def _sample_texts(path) -> list[str]:
    """The samples of LENGTH characters of a samples.txt file (which may hold line ends)."""
    blocks = re.split(r"(?m)^----- sample \d+ of \d+ -----\n", path.read_text(encoding="utf-8"))
    assert blocks[0] == ""
    assert all(b[LENGTH:] == "\n\n" for b in blocks[1:-1]) and blocks[-1][LENGTH:] == "\n"
    return [b[:LENGTH] for b in blocks[1:]]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    (root / "poem.txt").write_text("the cat sat on the mat; the dog sat on the log.\n" * 30, encoding="utf-8")
    _train(["made", "--set", "hidden=16"], f"text:{root / 'poem.txt'}?length={LENGTH}", root / "run")
    return root / "run"


@pytest.fixture(scope="module")
def audio_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("audio")
    write_wav_file(root / "wavs" / "a.wav", tone(0.3, 4000, 300), 4000)
    write_wav_file(root / "wavs" / "b.wav", chirp(0.3, 4000), 4000, width=1)
    _train(["independent"], f"wav:{root / 'wavs'}?length={LENGTH}", root / "run")
    return root / "run"


def test_a_text_run_writes_samples_that_decode_to_its_vocabulary(text_run):
    vocab = json.loads((text_run / "config.json").read_text())["config"]["data"]["vocab"]
    assert set(vocab) == set("the cat sat on the mat; the dog sat on the log.\n")
    texts = _sample_texts(text_run / "samples.txt")
    assert len(texts) == 16 and all(set(t) <= set(vocab) for t in texts)
    assert (text_run / "samples.png").is_file() and not (text_run / "samples.wav").exists()


def test_dgm_sample_writes_text_from_the_saved_vocabulary(text_run, tmp_path):
    vocab = json.loads((text_run / "config.json").read_text())["config"]["data"]["vocab"]
    (text_run.parent / "poem.txt").rename(text_run.parent / "moved.txt")  # decoding needs no data file
    try:
        result = invoke(["sample", str(text_run), "-n", "3", "--out", str(tmp_path / "s.txt"), "--seed", "4"])
        assert result.exit_code == 0, result.output
    finally:
        (text_run.parent / "moved.txt").rename(text_run.parent / "poem.txt")
    texts = _sample_texts(tmp_path / "s.txt")
    assert len(texts) == 3 and all(set(t) <= set(vocab) for t in texts)
    assert_one_line_error(
        invoke(["sample", str(text_run), "--out", str(tmp_path / "s.wav")]),
        "--out s.wav: .wav files hold audio samples, of runs on wav:PATH data; this run's data is text",
    )


def test_an_audio_run_writes_a_wav_and_its_waveforms(audio_run, tmp_path):
    with wave.open(str(audio_run / "samples.wav"), "rb") as f:
        assert (f.getnchannels(), f.getsampwidth(), f.getframerate()) == (1, 2, 4000)
        assert f.getnframes() == 16 * 16 + 15 * 400
    assert (audio_run / "samples.png").is_file() and not (audio_run / "samples.txt").exists()
    result = invoke(["sample", str(audio_run), "-n", "2", "--out", str(tmp_path / "s.wav")])
    assert result.exit_code == 0, result.output
    with wave.open(str(tmp_path / "s.wav"), "rb") as f:
        assert f.getnframes() == 2 * 16 + 400
    assert_one_line_error(
        invoke(["sample", str(audio_run), "--out", str(tmp_path / "s.txt")]),
        "--out s.txt: .txt files hold text samples, of runs on text:PATH data; this run's data is audio",
    )


def test_text_and_wav_outputs_are_refused_for_image_runs(tmp_path, monkeypatch, digits_binary):
    monkeypatch.chdir(tmp_path)
    model = dgm.build("independent", data=digits_binary)
    record = RunRecord("independent", to_dict(model.config), {"spec": "digits", "transforms": ["binarize"]})
    write_record(tmp_path / "img", record)
    save_weights(tmp_path / "img", model)
    for suffix, kind in ((".txt", "text"), (".wav", "audio")):
        assert_one_line_error(
            invoke(["sample", "img", "--out", f"s{suffix}"]),
            f"--out s{suffix}: {suffix} files hold {kind} samples, of runs on",
        )
    assert not list(tmp_path.glob("s.*"))
