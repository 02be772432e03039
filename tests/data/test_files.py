"""User files: npz, idx (gzipped and plain), folders of images and CSV tables."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest
import torch
from PIL import Image

from dgm.data import DataInfo, load_dataset
from dgm.errors import DataError


def _sizes(ds) -> list[int]:
    return [ds.split(s).n for s in ("train", "val", "test")]


# ----- npz ------------------------------------------------------------------------------------


def test_npz_vectors_with_labels_split_80_10_10(tmp_path):
    x = np.random.default_rng(1).normal(size=(50, 3))
    y = np.arange(50) % 4
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset(f"npz:{tmp_path / 'd.npz'}")
    assert ds.raw_info == DataInfo((3,), "continuous", None, 4)
    assert _sizes(ds) == [40, 5, 5]
    perm = np.random.default_rng(0).permutation(50)
    assert sorted(ds.split("test").x[:, 0].tolist()) == sorted(x[perm[45:], 0].astype(np.float32).tolist())
    got = torch.cat([ds.split(s).x for s in ("train", "val", "test")])
    assert sorted(got[:, 0].tolist()) == sorted(x[:, 0].astype(np.float32).tolist())  # a partition
    assert torch.equal(ds.split("train").y, torch.as_tensor(y[np.sort(perm[:40])]))


@pytest.mark.parametrize(
    ("array", "info"),
    [
        (np.random.default_rng(0).integers(0, 256, (20, 5, 4), dtype=np.uint8), DataInfo((1, 5, 4), "discrete", 256)),
        (np.random.default_rng(0).integers(0, 2, (20, 2, 3, 3)), DataInfo((2, 3, 3), "binary", 2)),
        (np.tile(np.arange(6), (20, 1)), DataInfo((6,), "discrete", 6)),
        (np.random.default_rng(0).random((20, 4)).astype(np.float32), DataInfo((4,), "continuous")),
    ],
)
def test_npz_shape_and_support_inference(tmp_path, array, info):
    np.savez(tmp_path / "a.npz", x=array)
    assert load_dataset(f"npz:{tmp_path / 'a.npz'}").raw_info == info


def test_npz_levels_option_and_label_name(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.tile(np.arange(6), (20, 1)), kind=np.array(["a", "b"] * 10))
    ds = load_dataset(f"npz:{tmp_path / 'a.npz'}?levels=10&label=kind")
    assert ds.raw_info == DataInfo((6,), "discrete", 10, 2)
    with pytest.raises(DataError, match="levels=4 needs integer values in 0..3"):
        load_dataset(f"npz:{tmp_path / 'a.npz'}?levels=4")
    with pytest.raises(DataError, match="no label array 'y'; arrays in the file: x, kind"):
        load_dataset(f"npz:{tmp_path / 'a.npz'}?label=y")


def test_npz_given_splits(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (30, 4, 4), dtype=np.uint8),
        "y_train": np.arange(30) % 3,
        "x_test": rng.integers(0, 256, (7, 4, 4), dtype=np.uint8),
        "y_test": np.arange(7) % 3,
    }
    np.savez(tmp_path / "s.npz", **arrays)
    ds = load_dataset(f"npz:{tmp_path / 's.npz'}")
    assert _sizes(ds) == [27, 3, 7]  # 10% of train held out as val
    assert torch.equal(ds.split("test").x[:, 0], torch.as_tensor(arrays["x_test"], dtype=torch.float32))
    assert ds.raw_info == DataInfo((1, 4, 4), "discrete", 256, 3)
    np.savez(tmp_path / "v.npz", x_val=arrays["x_test"][:2], **arrays)
    with pytest.raises(DataError, match="labels for some splits but not y_val"):
        load_dataset(f"npz:{tmp_path / 'v.npz'}")
    np.savez(tmp_path / "v.npz", x_val=arrays["x_test"][:2], y_val=np.array([2, 1]), **arrays)
    assert _sizes(load_dataset(f"npz:{tmp_path / 'v.npz'}")) == [30, 2, 7]
    with pytest.raises(DataError, match="no label arrays 'kind_train', 'kind_test'"):
        load_dataset(f"npz:{tmp_path / 'v.npz'}?label=kind")


def test_npy_file_is_read_as_x(tmp_path):
    np.save(tmp_path / "a.npy", np.random.default_rng(0).random((12, 2)))
    assert load_dataset(f"npz:{tmp_path / 'a.npy'}").raw_info == DataInfo((2,), "continuous")


# ----- idx ------------------------------------------------------------------------------------


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


@pytest.mark.parametrize("gz", [True, False])
def test_idx_images_with_sibling_labels(tmp_path, gz):
    images = np.random.default_rng(0).integers(0, 256, (20, 6, 5), dtype=np.uint8)
    labels = np.arange(20, dtype=np.uint8) % 10
    suffix = ".gz" if gz else ""
    write = gzip.compress if gz else (lambda b: b)
    (tmp_path / f"train-images-idx3-ubyte{suffix}").write_bytes(write(_idx_bytes(images)))
    (tmp_path / f"train-labels-idx1-ubyte{suffix}").write_bytes(write(_idx_bytes(labels)))
    ds = load_dataset(f"idx:{tmp_path / f'train-images-idx3-ubyte{suffix}'}")
    assert ds.raw_info == DataInfo((1, 6, 5), "discrete", 256, 10)
    assert _sizes(ds) == [16, 2, 2]
    first = int(np.sort(np.random.default_rng(0).permutation(20)[:16])[0])
    assert torch.equal(ds.split("train").x[0, 0], torch.as_tensor(images[first], dtype=torch.float32))
    assert int(ds.split("train").y[0]) == labels[first]


def test_idx_without_labels_and_corrupt_files(tmp_path):
    images = np.zeros((10, 3, 3), dtype=np.uint8)
    (tmp_path / "imgs.idx").write_bytes(_idx_bytes(images))
    assert load_dataset(f"idx:{tmp_path / 'imgs.idx'}").raw_info.num_classes == 0
    (tmp_path / "short.idx").write_bytes(_idx_bytes(images)[:-5])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_dataset(f"idx:{tmp_path / 'short.idx'}")
    (tmp_path / "junk.idx").write_bytes(b"hello world")
    with pytest.raises(DataError, match="not an IDX file"):
        load_dataset(f"idx:{tmp_path / 'junk.idx'}")
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b" + b"x" * 20)
    with pytest.raises(DataError, match="may be corrupt"):
        load_dataset(f"idx:{tmp_path / 'bad.gz'}")


# ----- folder ---------------------------------------------------------------------------------


def _png(path, size=(6, 4), mode="L", value=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode == "L" else (value, 0, 255 - value)).save(path)


def test_folder_with_class_subfolders(tmp_path):
    for k, name in enumerate(["cat", "dog"]):
        for i in range(6):
            _png(tmp_path / name / f"{i}.png", value=10 * i + k)
    ds = load_dataset(f"folder:{tmp_path}")
    assert ds.raw_info == DataInfo((1, 4, 6), "discrete", 256, 2)
    assert ds.class_names == ("cat", "dog")
    assert _sizes(ds) == [10, 1, 1]
    every = torch.cat([ds.split(s).x for s in ("train", "val", "test")])
    labels = torch.cat([ds.split(s).y for s in ("train", "val", "test")])
    assert torch.equal(every[:, 0, 0, 0] % 10, labels.float())  # pixel value encodes the class


def test_folder_rgb_resize_and_unlabelled(tmp_path):
    for i in range(9):
        _png(tmp_path / f"{i}.png", size=(8, 8))
    _png(tmp_path / "9.jpg", size=(16, 12), mode="RGB", value=100)
    ds = load_dataset(f"folder:{tmp_path}?size=5")
    assert ds.raw_info == DataInfo((3, 5, 5), "discrete", 256, 0)
    assert ds.split("train").y is None
    assert "; resized to 5x5 (10 of 10 images)" in ds.describe()


def test_folder_of_mixed_sizes_is_refused_naming_two_files_and_the_fix(tmp_path):
    for i in range(9):
        _png(tmp_path / "a" / f"{i}.png", size=(8, 8))
    _png(tmp_path / "b" / "wide.png", size=(16, 12))
    with pytest.raises(DataError) as err:
        load_dataset(f"folder:{tmp_path}")
    message = str(err.value)
    assert "differ in size" in message
    assert "a/0.png is 8x8 pixels" in message and "b/wide.png is 16x12" in message
    assert f"folder:{tmp_path}?size=8" in message


def test_folder_resize_is_described_only_when_images_change(tmp_path):
    for i in range(9):
        _png(tmp_path / f"{i}.png", size=(8, 8))
    _png(tmp_path / "9.png", size=(16, 12), value=200)
    resized = load_dataset(f"folder:{tmp_path}?size=8")
    assert resized.raw_info.shape == (1, 8, 8)
    assert resized.notes == ("resized to 8x8 (1 of 10 images)",)
    every = torch.cat([resized.split(s).x for s in ("train", "val", "test")])
    assert sorted(every[:, 0, 0, 0].tolist())[-1] == 200  # the resized image kept its value
    (tmp_path / "9.png").unlink()
    _png(tmp_path / "9.png", size=(8, 8))
    same = load_dataset(f"folder:{tmp_path}?size=8")
    assert same.notes == () and "resized" not in same.describe()


def test_folder_errors(tmp_path):
    with pytest.raises(DataError, match="holds no PNG or JPEG images"):
        load_dataset(f"folder:{tmp_path}")
    for i in range(10):
        _png(tmp_path / f"{i}.png")
    (tmp_path / "5.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="cannot read image .*5.png"):
        load_dataset(f"folder:{tmp_path}")
    with pytest.raises(DataError, match="is a file, not a folder"):
        load_dataset(f"folder:{tmp_path / '1.png'}")


# ----- csv ------------------------------------------------------------------------------------


def _csv(path, header, rows):
    path.write_text("\n".join([",".join(header)] + [",".join(map(str, r)) for r in rows]) + "\n")


def test_csv_with_label_column(tmp_path):
    rows = [(i, i * 0.5, ["b", "a", "c"][i % 3]) for i in range(20)]
    _csv(tmp_path / "t.csv", ["u", "v", "kind"], rows)
    ds = load_dataset(f"csv:{tmp_path / 't.csv'}?label=kind")
    assert ds.raw_info == DataInfo((2,), "continuous", None, 3)
    assert ds.class_names == ("a", "b", "c")
    x = torch.cat([ds.split(s).x for s in ("train", "val", "test")])
    y = torch.cat([ds.split(s).y for s in ("train", "val", "test")])
    expected = torch.tensor([{"a": 0, "b": 1, "c": 2}[["b", "a", "c"][int(u) % 3]] for u in x[:, 0]])
    assert torch.equal(y, expected)
    _csv(tmp_path / "u.csv", ["u", "v"], [(i, -i) for i in range(10)])
    unlabelled = load_dataset(f"csv:{tmp_path / 'u.csv'}")
    assert unlabelled.raw_info == DataInfo((2,), "continuous") and unlabelled.split("test").y is None


def test_csv_errors(tmp_path):
    _csv(tmp_path / "t.csv", ["u", "kind"], [(i, "x") for i in range(12)])
    with pytest.raises(DataError, match="column 'kind' .* is not numeric .*label=kind"):
        load_dataset(f"csv:{tmp_path / 't.csv'}")
    with pytest.raises(DataError, match="has no column 'label'; its columns are: u, kind"):
        load_dataset(f"csv:{tmp_path / 't.csv'}?label=label")
    _csv(tmp_path / "n.csv", ["u", "v"], [(i, "nan" if i == 3 else i) for i in range(12)])
    with pytest.raises(DataError, match="1 NaN or infinite values"):
        load_dataset(f"csv:{tmp_path / 'n.csv'}")
    _csv(tmp_path / "e.csv", ["u", "v"], [])
    with pytest.raises(DataError, match="no data rows"):
        load_dataset(f"csv:{tmp_path / 'e.csv'}")
    (tmp_path / "r.csv").write_text("u,v\n1,2\n3\n")
    with pytest.raises(DataError, match="row 3 .* has 1 values but the header has 2"):
        load_dataset(f"csv:{tmp_path / 'r.csv'}")


@pytest.mark.parametrize(
    "labels, needle",
    [
        (np.linspace(0, 1, 40), "fractional values such as"),
        (np.arange(40) % 3 - 1, "negative label -1; map the labels to class indices"),
        (np.where(np.arange(40) % 2, np.nan, 1.0), "NaN or infinite labels"),
    ],
)
def test_npz_labels_that_are_not_class_indices_are_refused(tmp_path, labels, needle):
    np.savez(tmp_path / "a.npz", x=np.random.default_rng(0).normal(size=(40, 3)), y=labels)
    with pytest.raises(DataError, match=needle):
        load_dataset(f"npz:{tmp_path / 'a.npz'}")


def test_npz_integer_labels_stored_as_floats_keep_their_values(tmp_path):
    np.savez(tmp_path / "a.npz", x=np.zeros((40, 3)), y=(np.arange(40) % 4).astype(np.float32))
    ds = load_dataset(f"npz:{tmp_path / 'a.npz'}")
    assert ds.raw_info.num_classes == 4
