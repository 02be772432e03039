"""``text:PATH``: character levels, a vocabulary independent of the split, windows that never
cross from one split into another, and clear errors for files that are not usable text."""

from __future__ import annotations

import re

import numpy as np
import pytest

import dgm
from dgm.config import to_dict
from dgm.data import list_datasets, load_dataset
from dgm.data.text import MAX_VOCAB, encode_text
from dgm.data.windows import block_bounds, count_windows, windows
from dgm.errors import DataError
from dgm.registry import data_info_of

TEXT = "".join(f"line {i}: the quick brown fox jumps over the lazy dog.\n" for i in range(40))


def _write(tmp_path, text: str | bytes, name: str = "t.txt"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def _decode(split_x, vocab: str) -> list[str]:
    return ["".join(vocab[int(c)] for c in row) for row in split_x]


def test_vocabulary_is_the_sorted_characters_and_levels_decode_to_the_text(tmp_path):
    ds = load_dataset(f"text:{_write(tmp_path, TEXT)}?length=32")
    vocab = "".join(sorted(set(TEXT)))
    assert ds.info.vocab == vocab and ds.info.levels == len(vocab)
    assert ds.info.shape == (32,) and ds.info.support == "discrete" and ds.info.is_sequence
    train = _decode(ds.split("train").x, vocab)
    assert "".join(train) == TEXT[: len(train) * 32]  # non-overlapping windows from the start
    assert ds.to_display(ds.split("test").x).equal(ds.split("test").x)  # levels as they are
    assert "windows" in ds.describe() and "vocabulary of" in ds.describe()


def test_the_vocabulary_does_not_depend_on_the_split(tmp_path):
    text = "ab" * 500 + "xyz" * 40  # x, y and z occur only in the test block
    ds = load_dataset(f"text:{_write(tmp_path, text)}?length=16")
    assert ds.info.vocab == "abxyz"
    assert set(ds.split("train").x.unique().tolist()) == {0.0, 1.0}


def test_splits_are_contiguous_blocks_so_no_character_is_shared(tmp_path):
    rng = np.random.default_rng(0)
    text = "".join(rng.choice(list("abcdefgh"), 3000))
    ds = load_dataset(f"text:{_write(tmp_path, text)}?length=20&stride=7")
    bounds = block_bounds(len(text))
    for name, (start, end) in bounds.items():
        rows = _decode(ds.split(name).x, ds.info.vocab)
        assert len(rows) == count_windows(end - start, 20, 7)
        for k, row in enumerate(rows):
            assert row == text[start + 7 * k : start + 7 * k + 20]  # inside its block
            assert start + 7 * k + 20 <= end


def test_stride_gives_overlapping_windows(tmp_path):
    path = _write(tmp_path, TEXT)
    plain = load_dataset(f"text:{path}?length=32")
    dense = load_dataset(f"text:{path}?length=32&stride=8")
    assert dense.split("train").n > 3 * plain.split("train").n
    x = dense.split("train").x
    assert x[0, 8:].equal(x[1, :24])


def test_crlf_line_ends_and_a_byte_order_mark_are_read_as_plain_text(tmp_path):
    path = _write(tmp_path, b"\xef\xbb\xbf" + TEXT.replace("\n", "\r\n").encode("utf-8"))
    ds = load_dataset(f"text:{path}?length=32")
    assert ds.info.vocab == "".join(sorted(set(TEXT)))


def test_unicode_characters_are_characters_not_bytes():
    levels, vocab = encode_text("héllo wörld ☃☃")
    assert vocab == "".join(sorted(set("héllo wörld ☃☃")))
    assert "".join(vocab[i] for i in levels) == "héllo wörld ☃☃"


def test_windows_and_blocks():
    assert block_bounds(10) == {"train": (0, 8), "val": (8, 9), "test": (9, 10)}
    assert windows(np.arange(5), 6, 1).shape == (0, 6)
    assert windows(np.arange(10), 4, 3).tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert count_windows(10, 4, 3) == 3 and count_windows(3, 4, 1) == 0


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "is empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(100), "binary file"),
        ("caf\xe9 cr\xe8me ".encode("latin-1") * 100, "not UTF-8 text: byte 0xe9 at offset 3"),
        (b"a" * 1000, "only the character 'a'"),
        (b"abcdef" * 3, "fewer than one window of 64"),
        (b"abcdef" * 50, "val block (the next 10%) holds 30, fewer than one window of 64"),
    ],
)
def test_unusable_files_are_refused_naming_the_problem(tmp_path, content, needle):
    with pytest.raises(DataError, match=re.escape(needle)):
        load_dataset(f"text:{_write(tmp_path, content)}")


def test_folders_missing_files_huge_vocabularies_and_bad_options_are_refused(tmp_path):
    with pytest.raises(DataError, match="is a folder; text: takes one text file"):
        load_dataset(f"text:{tmp_path}")
    with pytest.raises(DataError, match="file not found"):
        load_dataset(f"text:{tmp_path / 'nope.txt'}")
    many = "".join(chr(0x4E00 + i) for i in range(MAX_VOCAB + 1)) * 20
    with pytest.raises(DataError, match=f"{MAX_VOCAB + 1} distinct characters; text: takes at most {MAX_VOCAB}"):
        load_dataset(f"text:{_write(tmp_path, many)}")
    path = _write(tmp_path, TEXT)
    with pytest.raises(DataError, match="unknown option 'size'.*length, stride"):
        load_dataset(f"text:{path}?size=3")
    with pytest.raises(DataError, match="length='1'.*integer >= 2"):
        load_dataset(f"text:{path}?length=1")
    with pytest.raises(DataError, match="use a larger \\?stride="):
        load_dataset(f"text:{_write(tmp_path, 'ab' * 40_000, 'big.txt')}?length=4096&stride=1")
    with pytest.raises(DataError, match="did you mean text:"):
        load_dataset(str(path))


@pytest.mark.parametrize("transform", ["binarize", "dequantize", "scale"])
def test_transforms_are_refused_on_text(tmp_path, transform):
    with pytest.raises(DataError, match=f"transform '{transform}' does not apply to text of 64 characters"):
        load_dataset(f"text:{_write(tmp_path, TEXT)}", transforms=[transform])


def test_the_vocabulary_travels_with_the_model_config(tmp_path):
    ds = load_dataset(f"text:{_write(tmp_path, TEXT)}?length=16")
    model = dgm.build("independent", data=ds)
    saved = to_dict(model.config)["data"]
    assert saved["vocab"] == ds.info.vocab
    assert data_info_of(saved) == ds.info


def test_dgm_list_shows_the_sequence_kinds():
    specs = {row["spec"]: row["summary"] for row in list_datasets()}
    assert "characters" in specs["text:PATH"] and "mu-law" in specs["wav:PATH"]
