"""``folder:PATH``: a folder of PNG/JPEG images, with class sub-folders as labels.

``folder:data/pets?size=32``: if PATH has sub-folders holding images, each sub-folder is a
class (sorted names -> 0..K-1); otherwise the images directly in PATH are unlabelled. Images
are converted to grey ("L") if every one is grey, else to RGB, and resized to ``size`` x
``size`` (option ``size``) or to the size of the first image in sorted order. Pixels have 256
levels. The set is split 80/10/10.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dgm.data.arrays import as_examples
from dgm.data.info import DataInfo
from dgm.data.spec import DataSpec
from dgm.data.splits import Source, split_arrays
from dgm.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
GREY_MODES = {"1", "L", "LA", "I", "I;16", "F"}


def _images_in(folder: Path, recursive: bool) -> list[Path]:
    files = folder.rglob("*") if recursive else folder.iterdir()
    return sorted(f for f in files if f.is_file() and f.suffix.lower() in IMAGE_SUFFIXES)


def list_images(root: Path) -> tuple[list[Path], list[int] | None, list[str]]:
    """Image files under ``root``, their labels (None when unlabelled) and the class names."""
    class_dirs = sorted(d for d in root.iterdir() if d.is_dir() and not d.name.startswith(".") and _images_in(d, True))
    loose = _images_in(root, recursive=False)
    if class_dirs and loose:
        raise DataError(
            f"{root} has both class sub-folders and loose images ({loose[0].name}); "
            "move every image into a class folder, or remove the sub-folders"
        )
    if not class_dirs:
        if not loose:
            raise DataError(f"{root} holds no PNG or JPEG images; give a folder of *.png / *.jpg files")
        return loose, None, []
    files, labels = [], []
    for k, d in enumerate(class_dirs):
        found = _images_in(d, recursive=True)
        files += found
        labels += [k] * len(found)
    return files, labels, [d.name for d in class_dirs]


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


def read_images(files: list[Path], size: int | None) -> np.ndarray:
    """Images as a uint8 array (N, C, H, W), C = 1 if all are grey else 3, all resized alike."""
    from PIL import Image

    grey = True
    first_size = None
    for f in files:  # first pass reads headers only
        with _open(f) as image:
            grey = grey and _is_grey(image)
            first_size = first_size or image.size
    mode = "L" if grey else "RGB"
    target = (size, size) if size else first_size
    arrays = []
    for f in files:
        with _open(f) as image:
            try:
                image = image.convert(mode)
                if image.size != target:
                    image = image.resize(target, Image.Resampling.BILINEAR)
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
    x = as_examples(read_images(files, size), f"images in {root}")
    y = None if labels is None else np.asarray(labels, dtype=np.int64)
    info = DataInfo(tuple(int(d) for d in x.shape[1:]), "discrete", 256, len(classes))
    return Source(info, split_arrays(x, y, str(root)), class_names=tuple(classes))
