"""Keeping only some classes of a labelled dataset (``classes="0-8"``)."""

from __future__ import annotations

from collections.abc import Sequence

from dgm.data.splits import Split
from dgm.errors import DataError


def parse_classes(classes: Sequence[int] | str | int, num_classes: int) -> tuple[int, ...]:
    """Sorted class indices from a list of ints or a string such as ``"0-8"`` or ``"0,2,4-6"``.

    Raises :class:`DataError` on bad syntax and on a class outside 0..num_classes-1.
    """
    if isinstance(classes, str):
        wanted: set[int] = set()
        for part in filter(None, (p.strip() for p in classes.split(","))):
            lo, dash, hi = part.partition("-")
            try:
                a = int(lo)
                b = int(hi) if dash else a
            except ValueError:
                raise DataError(
                    f"bad classes {classes!r}; write class numbers and ranges such as '0-8' or '0,2,4-6'"
                ) from None
            if b < a:
                raise DataError(f"bad class range '{part}' in classes {classes!r}; write low-high")
            wanted.update(range(a, b + 1))
    else:
        items = [classes] if isinstance(classes, int) else list(classes)
        if not all(isinstance(c, int) and not isinstance(c, bool) for c in items):
            raise DataError(f"classes must be integers or a string like '0-8', got {classes!r}")
        wanted = set(items)
    if not wanted:
        raise DataError(f"classes {classes!r} names no class; give e.g. '0-8'")
    missing = sorted(c for c in wanted if not 0 <= c < num_classes)
    if missing:
        raise DataError(f"class {missing[0]} does not exist; this data has classes 0..{num_classes - 1}")
    return tuple(sorted(wanted))


def filter_classes(
    splits: dict[str, Split], classes: Sequence[int] | str | int, num_classes: int, name: str
) -> dict[str, Split]:
    """Keep the examples of every split whose label is in ``classes``; labels keep their values."""
    if num_classes < 1 or any(s.y is None for s in splits.values()):
        raise DataError(f"dataset '{name}' has no labels, so it cannot be filtered by classes; drop classes=")
    keep = parse_classes(classes, num_classes)
    out = {}
    for split_name, split in splits.items():
        mask = (split.y[:, None] == split.y.new_tensor(keep)[None, :]).any(dim=1)
        if not bool(mask.any()):
            raise DataError(
                f"classes {list(keep)} match no example of the '{split_name}' split of '{name}'; "
                "choose classes present in the data"
            )
        out[split_name] = Split(split.x[mask], split.y[mask])
    return out
