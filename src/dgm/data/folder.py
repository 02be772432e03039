"""``folder:PATH``: a folder of PNG/JPEG images, with class sub-folders as labels.

``folder:data/pets?size=32``: if PATH has sub-folders holding images, each sub-folder is a
class (sorted names -> 0..K-1); otherwise the images directly in PATH are unlabelled. Images
are converted to grey ("L") if every one is grey, else to RGB. Images of mixed sizes are an
error unless option ``size`` is given; then every image not ``size`` x ``size`` is resized to
it, which the dataset's ``describe()`` line says. Pixels have 256 levels. The set is split
80/10/10.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dgm.data.arrays import as_examples
from dgm.data.info import DataInfo
from dgm.data.spec import DataSpec
from dgm.data.splits import Source, split_arrays
from dgm.errors import DataError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def _files_in(folder: Path, suffixes: frozenset[str], recursive: bool) -> list[Path]:
    files = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(f for f in files if f.is_file() and f.suffix.lower() in suffixes)


def list_labelled_files(
    root: Path, suffixes: frozenset[str], what: str, none_found: str
) -> tuple[list[Path], list[int] | None, list[str]]:
    """Files with ``suffixes`` under the folder ``root``, their labels (None when unlabelled) and
    the class names: sub-folders holding such files are classes (sorted names -> 0..K-1), else the
    files directly in ``root`` are used. ``what`` names the files in errors ("images"), and
    ``none_found`` is the error when there are none."""
    class_dirs = sorted(
        d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and _files_in(d, suffixes, True)
    )
    loose = _files_in(root, suffixes, recursive=False)
    if class_dirs and loose:
        raise DataError(
            f"{root} has both class sub-folders and loose {what} ({loose[0].name}); "
            f"move every {what.split()[-1].rstrip('s')} into a class folder, or remove the sub-folders"
        )
    if not class_dirs:
        if not loose:
            raise DataError(none_found)
        return loose, None, []
    files, labels = [], []
    for k, d in enumerate(class_dirs):
        found = _files_in(d, suffixes, recursive=True)
        files += found
        labels += [k] * len(found)
    return files, labels, [d.name for d in class_dirs]


def list_images(root: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """Image files under ``root``, their labels (None when unlabelled) and the class names."""
    return list_labelled_files(
        root, IMAGE_SUFFIXES, "images", f"{root} holds no PNG or JPEG images; give a folder of *.png / *.jpg files"
    )


def _open(path: Path):
    from PIL import Image

    try:
        return Image.open(path)
    except Exception as err:  # PIL raises many types for unreadable files
        raise DataError(f"cannot read image {path} ({type(err).__name__}); remove or re-save it") from None


def _is_grey(image) -> bool:
    if image.mode in GREY_MODES:
        return True
    if image.mode == "P":
        palette = image.getpalette() or []
        return all(palette[i] == palette[i + 1] == palette[i + 2] for i in range(0, len(palette) - 2, 3))
    return False


def read_headers(files: list[Path]) -> tuple[bool, list[tuple[int, int]]]:
    """Whether every image is grey, and the (width, height) of each, from the headers only."""
    grey, sizes = True, []
    for f in files:
        with _open(f) as image:
            grey = grey and _is_grey(image)
            sizes.append(image.size)
    return grey, sizes


def common_size(root: Path, files: list[Path], sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The one (width, height) of all images under ``root``; images of mixed sizes are a
    DataError naming two of them and the ``?size=N`` option that resizes them all."""
    other = next((i for i, s in enumerate(sizes) if s != sizes[0]), None)
    if other is not None:
        (w0, h0), (w1, h1) = sizes[0], sizes[other]
        raise DataError(
            f"images in {root} differ in size: {files[0].relative_to(root)} is {w0}x{h0} pixels but "
            f"{files[other].relative_to(root)} is {w1}x{h1} (width x height); resize them all to "
            f"N x N with ?size=N, e.g. folder:{root}?size={min(w0, h0)}"
        )
    return sizes[0]


def read_images(files: list[Path], grey: bool, size: tuple[int, int]) -> np.ndarray:
    """Images as a uint8 array (N, C, H, W), C = 1 if ``grey`` else 3, resized where they are not
    ``size`` (width, height)."""
    from PIL import Image

    mode = "L" if grey else "RGB"
    arrays = []
    for f in files:
        with _open(f) as image:
            try:
                image = image.convert(mode)
                if image.size != size:
                    image = image.resize(size, Image.Resampling.BILINEAR)
                arrays.append(np.asarray(image, dtype=np.uint8))
            except Exception as err:
                raise DataError(f"cannot decode image {f} ({type(err).__name__}); remove or re-save it") from None
    x = np.stack(arrays)  # (N, H, W) or (N, H, W, 3)
    return x[:, None] if grey else x.transpose(0, 3, 1, 2)


def load_folder(spec: DataSpec) -> Source:
    """Load ``folder:PATH`` (see the module docstring)."""
    spec.check_options(("size",))
    root = spec.path(directory=True)
    size = spec.int_option("size", None)
    files, labels, classes = list_images(root)
    grey, sizes = read_headers(files)
    target = (size, size) if size else common_size(root, files, sizes)
    x = as_examples(read_images(files, grey, target), f"images in {root}")
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    info = DataInfo(tuple(int(d) for d in x.shape[1:]), "discrete", 256, len(classes))
    resized = sum(s != target for s in sizes)
    notes = (f"resized to {size}x{size} ({resized} of {len(files)} images)",) if resized else ()
    return Source(info, split_arrays(x, y, str(root)), class_names=tuple(classes), notes=notes)
