"""Dataset addresses: ``kind:arg?key=value&key=value``.

>>> parse_spec("toy2d:gmm8?n=5000")
DataSpec(text='toy2d:gmm8?n=5000', kind='toy2d', arg='gmm8', options={'n': '5000'})
>>> parse_spec("mnist5k").kind
'mnist5k'

The part before the first ``:`` is the kind (``digits``, ``mnist5k``, ``toy2d``, ``npz``,
``idx``, ``folder``, ``csv``, and the sequences ``text`` and ``wav``); the part after it is the
kind's argument (a toy name or a file path); options follow the first ``?``
(``text:book.txt?length=128``, ``wav:clips?rate=8000&length=1024``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dgm.errors import DataError


@dataclass(frozen=True)
class DataSpec:
    """A parsed dataset address; ``text`` is the spec exactly as given."""

    text: str
    kind: str
    arg: str = ""
    options: dict[str, str] = field(default_factory=dict)

    def check_options(self, allowed: Iterable[str]) -> None:
        """Raise :class:`DataError` naming any option not in ``allowed``."""
        allowed = sorted(allowed)
        for key in self.options:
            if key not in allowed:
                known = ", ".join(allowed) if allowed else "none"
                raise DataError(
                    f"unknown option '{key}' in data spec '{self.text}'; options for '{self.kind}' are: {known}"
                )

    def path(self, directory: bool = False) -> Path:
        """The file (or folder) named by the spec; a DataError when it is missing or the wrong kind."""
        what = "folder" if directory else "file"
        if not self.arg:
            raise DataError(f"data spec '{self.text}' names no {what}; write {self.kind}:PATH")
        path = Path(self.arg).expanduser()
        if not path.exists():
            raise DataError(f"{what} not found: {path} (data spec '{self.text}'); check the path")
        if directory and not path.is_dir():
            raise DataError(f"{path} is a file, not a folder; folder: takes a folder of images")
        if not directory and path.is_dir():
            raise DataError(f"{path} is a folder, not a file; for a folder of images use folder:{path}")
        return path

    def int_option(self, key: str, default: int | None = None, minimum: int = 1) -> int | None:
        """Option ``key`` as an integer >= ``minimum`` (``default`` when absent)."""
        if key not in self.options:
            return default
        text = self.options[key]
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise DataError(f"option {key}={text!r} in data spec '{self.text}' must be an integer >= {minimum}")
        return value


def parse_spec(text: str) -> DataSpec:
    """Split ``kind:arg?key=value&...`` into a :class:`DataSpec`; bad syntax is a DataError."""
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"a data spec is a non-empty string such as 'mnist5k', got {text!r}")
    body, _, query = text.strip().partition("?")
    kind, _, arg = body.partition(":")
    options: dict[str, str] = {}
    for item in filter(None, query.split("&")):
        key, eq, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not eq or not key or not value:
            raise DataError(f"bad option '{item}' in data spec '{text}'; write options as ?key=value&key=value")
        if key in options:
            raise DataError(f"option '{key}' is given twice in data spec '{text}'")
        options[key] = value
    return DataSpec(text=text, kind=kind.strip().lower(), arg=arg.strip(), options=options)
