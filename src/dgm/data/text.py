"""``text:PATH``: a user's UTF-8 text file, modelled character by character.

``text:shakespeare.txt?length=64&stride=32``: the vocabulary is the sorted distinct characters
of the whole file (level i is ``vocab[i]``, so it does not depend on the split), and examples
are windows of ``length`` characters (default 64) starting every ``stride`` characters (default
``length``: windows do not overlap). Windows never cross a split: the text is cut into
contiguous blocks, the first 80% of its characters for train, the next 10% for val and the last
10% for test, and windows are cut within each block, so no character of val or test is ever
seen in training. Windows (CR LF) line ends are read as ``\\n``.

The vocabulary is saved in the run's config.json (``DataInfo.vocab``), so samples decode
without the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dgm.data.info import DataInfo
from dgm.data.spec import DataSpec
from dgm.data.splits import Source, Split, make_split
from dgm.data.windows import block_bounds, check_size, windows
from dgm.errors import DataError

DEFAULT_LENGTH = 64  # characters per example: a few words of context, cheap for every model
MAX_VOCAB = 512  # beyond this the text is not a character-level corpus (or not text at all)


def read_text(path: Path) -> str:
    """The UTF-8 text of ``path`` (a byte-order mark dropped, CR LF read as LF); a DataError for
    a binary or non-UTF-8 file that names the offending byte, and for an empty file."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"cannot read {path} ({type(err).__name__}: {err.strerror})") from None
    if not data:
        raise DataError(f"{path} is empty; text: needs a text file of at least one window of characters")
    if b"\x00" in data[:8192]:
        raise DataError(f"{path} looks like a binary file (it holds NUL bytes), not UTF-8 text; give a text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        byte = data[err.start]
        raise DataError(
            f"{path} is not UTF-8 text: byte 0x{byte:02x} at offset {err.start} ({err.reason}); "
            "a binary file, or text in another encoding? Convert it to UTF-8 "
            "(e.g. iconv -f latin1 -t utf-8)"
        ) from None
    return text.replace("\r\n", "\n")


def encode_text(text: str) -> tuple[np.ndarray, str]:
    """The levels (N,) int64 of the characters of ``text`` and the vocabulary: its sorted
    distinct characters (sorted by code point, as Python sorts strings).

    >>> levels, vocab = encode_text("abba c")
    >>> vocab, levels.tolist()
    (' abc', [1, 2, 2, 1, 0, 3])
    """
    points = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    distinct, levels = np.unique(points, return_inverse=True)
    vocab = "".join(map(chr, distinct.tolist()))
    return levels.astype(np.int64), vocab


def _check_vocab(vocab: str, path: Path) -> None:
    if len(vocab) > MAX_VOCAB:
        raise DataError(
            f"{path} has {len(vocab)} distinct characters; text: takes at most {MAX_VOCAB} (a character-level "
            "model needs one output per character) - is it text? Remove rare symbols or give a smaller corpus"
        )
    if len(vocab) < 2:
        raise DataError(f"{path} holds only the character {vocab!r}; a text needs at least two distinct characters")


def _split_windows(levels: np.ndarray, length: int, stride: int, path: Path) -> dict[str, Split]:
    n = len(levels)
    if n < length:
        raise DataError(
            f"{path} has {n} characters, fewer than one window of {length}; give a longer text or a smaller ?length="
        )
    bounds = block_bounds(n)
    shortest = min(end - start for start, end in bounds.values())
    if shortest < length:
        name = min(bounds, key=lambda s: bounds[s][1] - bounds[s][0])
        smaller = f" or use ?length={shortest} or less" if shortest >= 2 else ""
        raise DataError(
            f"{path} has {n} characters, so its {name} block (the {'last' if name == 'test' else 'next'} 10%) "
            f"holds {shortest}, fewer than one window of {length}; give a text of {10 * length} characters "
            f"or more{smaller}"
        )
    check_size([b - a for a, b in bounds.values()], length, stride, str(path))
    return {s: make_split(windows(levels[a:b], length, stride).astype(np.float32)) for s, (a, b) in bounds.items()}


def load_text(spec: DataSpec) -> Source:
    """Load ``text:PATH[?length=T&stride=S]`` (see the module docstring)."""
    spec.check_options(("length", "stride"))
    if spec.arg and Path(spec.arg).expanduser().is_dir():
        raise DataError(f"{spec.arg} is a folder; text: takes one text file (join several files into one)")
    path = spec.path()
    length = spec.int_option("length", DEFAULT_LENGTH, minimum=2)
    stride = spec.int_option("stride", length)
    levels, vocab = encode_text(read_text(path))
    _check_vocab(vocab, path)
    splits = _split_windows(levels, length, stride, path)
    count = sum(split.n for split in splits.values())
    info = DataInfo((length,), "discrete", levels=len(vocab), vocab=vocab)
    notes = (
        f"{count} windows every {stride} characters of {len(levels)}; "
        "blocks of the text: first 80% train, next 10% val, last 10% test",
    )
    return Source(info, splits, notes=notes)
