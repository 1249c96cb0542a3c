"""Tests of snnlab.data: digits splits, CIFAR readers on small archives written here in
the official format, offline downloads (file:// URLs), augmentation and loaders."""
import dataclasses
import hashlib
import io
import os
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from snnlab import data
from snnlab.data import (CIFARDataset, DataBundle, download_cifar, load_cifar,
                         load_dataset, load_digits, make_loaders, random_crop_flip)

# ----------------------------------------------------------------------------- helpers

LAYOUT = {  # folder, train files, test files, meta file, label key, names key, classes
    "cifar10": ("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)],
                ["test_batch"], "batches.meta", "labels", "label_names", 10),
    "cifar100": ("cifar-100-python", ["train"], ["test"], "meta",
                 "fine_labels", "fine_label_names", 100),
}


def _key(k, keys):
    return k.encode() if keys == "bytes" else k


def write_cifar(root: Path, name: str, keys: str = "bytes", per_file: int = 4,
                n_test: int = 6, seed: int = 0) -> dict:
    """Write a small archive folder in the official layout; return what was written.

    Labels cycle through the classes so every class appears in the training set.
    ``keys="bytes"`` mimics the official Python-2 pickles (b"data"), ``"str"`` not.
    """
    folder, train_files, test_files, meta, label_key, names_key, n_cls = LAYOUT[name]
    out = root / folder
    out.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    written = {"train": [], "test": []}
    count = 0
    for split, files, n in (("train", train_files, per_file), ("test", test_files, n_test)):
        for fname in files:
            rows = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
            labels = [(count + i) % n_cls for i in range(n)]
            count += n
            batch = {_key("data", keys): rows, _key(label_key, keys): labels,
                     _key("batch_label", keys): _key("batch", keys)}
            if name == "cifar100":
                batch[_key("coarse_labels", keys)] = [lab // 5 for lab in labels]
            with open(out / fname, "wb") as f:
                pickle.dump(batch, f, protocol=2)
            written[split].append((rows, labels))
    class_names = [_key(f"class{i}", keys) for i in range(n_cls)]
    with open(out / meta, "wb") as f:
        pickle.dump({_key(names_key, keys): class_names}, f, protocol=2)
    return written


def make_tarball(src_root: Path, folder: str, dest: Path) -> str:
    """tar.gz ``src_root/folder`` into ``dest``; return its MD5."""
    with tarfile.open(dest, "w:gz") as tar:
        tar.add(src_root / folder, arcname=folder)
    return hashlib.md5(dest.read_bytes()).hexdigest()


# ----------------------------------------------------------------------------- digits

def test_digits_shapes_dtypes_ranges():
    b = load_digits(seed=0)
    assert isinstance(b, DataBundle)
    assert (b.name, b.num_classes, b.in_channels, b.image_size) == ("digits", 10, 1, 8)
    assert b.classes == tuple("0123456789")
    for ds in (b.train, b.val, b.test):
        x, y = ds.tensors
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert x.shape[1:] == (1, 8, 8) and y.shape == (x.shape[0],)
        assert x.min() >= 0.0 and x.max() <= 1.0
        assert set(y.tolist()) == set(range(10))  # stratified: every class everywhere
    assert b.train.tensors[0].max() == 1.0  # pixel 16 -> 1.0


def test_digits_split_sizes_and_stratification():
    b = load_digits(seed=0, val_fraction=0.15, test_fraction=0.2)
    sizes = [len(b.train), len(b.val), len(b.test)]
    assert sum(sizes) == 1797
    assert abs(sizes[1] - 0.15 * 1797) <= 10 and abs(sizes[2] - 0.2 * 1797) <= 10
    test_counts = torch.bincount(b.test.tensors[1], minlength=10)
    all_counts = torch.bincount(torch.cat([d.tensors[1] for d in (b.train, b.val, b.test)]))
    torch.testing.assert_close(test_counts.double(), (all_counts * 0.2).round().double(),
                               rtol=0, atol=0)


def test_digits_split_is_deterministic_and_seed_dependent():
    a, b, c = load_digits(seed=3), load_digits(seed=3), load_digits(seed=4)
    for split in ("train", "val", "test"):
        for ta, tb in zip(getattr(a, split).tensors, getattr(b, split).tensors):
            assert torch.equal(ta, tb)
    assert not torch.equal(a.test.tensors[0], c.test.tensors[0])


def test_stratified_split_is_disjoint_and_covers_all():
    labels = np.repeat(np.arange(5), [7, 9, 11, 13, 20])
    test, val, train = data._stratified_split(labels, (0.2, 0.15), seed=1)
    joined = np.concatenate([test, val, train])
    assert len(joined) == len(labels) and set(joined) == set(range(len(labels)))
    assert not (set(test) & set(val) or set(test) & set(train) or set(val) & set(train))


@pytest.mark.parametrize("kwargs", [dict(val_fraction=-0.1), dict(test_fraction=1.0),
                                    dict(val_fraction=0.5, test_fraction=0.5)])
def test_digits_rejects_bad_fractions(kwargs):
    with pytest.raises(ValueError, match="fraction"):
        load_digits(**kwargs)


# ----------------------------------------------------------------------------- CIFAR read

@pytest.mark.parametrize("keys", ["bytes", "str"])
def test_cifar10_reads_official_layout(tmp_path, keys):
    written = write_cifar(tmp_path, "cifar10", keys=keys)
    b = load_cifar("cifar10", root=tmp_path, val_fraction=0.5, seed=0)
    assert (b.name, b.num_classes, b.in_channels, b.image_size) == ("cifar10", 10, 3, 32)
    assert b.classes == tuple(f"class{i}" for i in range(10))
    assert (len(b.train), len(b.val), len(b.test)) == (10, 10, 6)  # 20 train: 1+1 per class
    # raw pixels: row layout is R plane, G plane, B plane -> HWC uint8
    rows, labels = written["test"][0]
    expect = rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    assert b.test.images.dtype == np.uint8 and b.test.images.shape == (6, 32, 32, 3)
    np.testing.assert_array_equal(b.test.images, expect)
    x, y = b.test[1]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32
    assert y.dtype == torch.int64 and int(y) == labels[1]
    mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(3, 1, 1)
    std = torch.tensor([0.2470, 0.2435, 0.2616]).view(3, 1, 1)
    ref = (torch.from_numpy(rows[1].reshape(3, 32, 32)).float() / 255 - mean) / std
    torch.testing.assert_close(x, ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("keys", ["bytes", "str"])
def test_cifar100_reads_fine_labels(tmp_path, keys):
    written = write_cifar(tmp_path, "cifar100", keys=keys, per_file=200, n_test=10)
    b = load_dataset("cifar100", root=tmp_path, val_fraction=0.5)
    assert (b.num_classes, len(b.classes), b.classes[99]) == (100, 100, "class99")
    assert (len(b.train), len(b.val), len(b.test)) == (100, 100, 10)
    assert b.test.labels.tolist() == written["test"][0][1]  # fine, not coarse, labels
    train_labels = torch.cat([b.train.labels, b.val.labels])
    assert torch.equal(torch.bincount(train_labels), torch.full((100,), 2))


def test_cifar_val_split_is_seeded_and_disjoint(tmp_path):
    write_cifar(tmp_path, "cifar10", per_file=20)
    a = load_cifar("cifar10", root=tmp_path, val_fraction=0.2, seed=5)
    b = load_cifar("cifar10", root=tmp_path, val_fraction=0.2, seed=5)
    assert len(a.val) == 20 and len(a.train) == 80
    np.testing.assert_array_equal(a.val.images, b.val.images)
    train_rows = {img.tobytes() for img in a.train.images}
    assert not any(img.tobytes() in train_rows for img in a.val.images)


def test_missing_folder_offline_explains_fix(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_cifar("cifar10", root=tmp_path / "nowhere")
    msg = str(err.value)
    assert "cifar-10-batches-py" in msg and "download=True" in msg and "nowhere" in msg


def test_missing_batch_file_is_reported(tmp_path):
    write_cifar(tmp_path, "cifar10")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_3"):
        load_cifar("cifar10", root=tmp_path)


def test_default_root_follows_env(tmp_path, monkeypatch):
    write_cifar(tmp_path, "cifar10")
    monkeypatch.setenv("SNNLAB_DATA", str(tmp_path))
    assert data.default_root() == tmp_path
    assert len(load_dataset("cifar10", val_fraction=0.5).test) == 6
    monkeypatch.delenv("SNNLAB_DATA")
    assert data.default_root() == Path("data")


# ----------------------------------------------------------------------------- download

@pytest.fixture
def cifar10_tarball(tmp_path):
    src = tmp_path / "src"
    write_cifar(src, "cifar10")
    tar = tmp_path / "cifar-10-python.tar.gz"
    return tar, make_tarball(src, "cifar-10-batches-py", tar)


def test_download_good_checksum_extracts_and_loads(tmp_path, cifar10_tarball):
    tar, md5 = cifar10_tarball
    root = tmp_path / "root"
    folder = download_cifar("cifar10", root, url=tar.as_uri(), md5=md5)
    assert folder == root / "cifar-10-batches-py" and folder.is_dir()
    assert sorted(p.name for p in root.iterdir()) == ["cifar-10-batches-py",
                                                       "cifar-10-python.tar.gz"]
    assert len(load_cifar("cifar10", root=root, val_fraction=0.5).test) == 6


def test_load_with_download_uses_official_name_and_checksum(tmp_path, cifar10_tarball,
                                                            monkeypatch):
    tar, md5 = cifar10_tarball
    fetched = []

    def fake_fetch(url, dest):
        fetched.append(url)
        Path(dest).write_bytes(tar.read_bytes())

    monkeypatch.setattr(data, "_fetch", fake_fetch)
    monkeypatch.setitem(data._CIFAR, "cifar10",
                        dataclasses.replace(data._CIFAR["cifar10"], md5=md5))
    b = load_cifar("cifar10", root=tmp_path / "root", download=True, val_fraction=0.5)
    assert fetched == ["https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"]
    assert len(b.train) + len(b.val) == 20


def test_download_bad_checksum_leaves_nothing(tmp_path, cifar10_tarball):
    tar, md5 = cifar10_tarball
    root = tmp_path / "root"
    with pytest.raises(RuntimeError, match=f"expected MD5 {'0' * 32}, got {md5}"):
        download_cifar("cifar10", root, url=tar.as_uri(), md5="0" * 32)
    assert list(root.iterdir()) == []


def test_official_checksum_rejects_other_archive(tmp_path, cifar10_tarball):
    tar, _ = cifar10_tarball
    with pytest.raises(RuntimeError, match="c58f30108f718f92721af3b95e74349a"):
        download_cifar("cifar10", tmp_path / "root", url=tar.as_uri())


def test_cached_archive_is_verified_too(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "cifar-10-python.tar.gz").write_bytes(b"not the archive")
    with pytest.raises(RuntimeError, match="expected MD5 c58f30108f718f92721af3b95e74349a"):
        load_cifar("cifar10", root=root, download=True)
    assert not (root / "cifar-10-batches-py").exists()


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    def broken_fetch(url, dest):
        Path(dest).write_bytes(b"half an archive")
        raise OSError("connection reset")

    monkeypatch.setattr(data, "_fetch", broken_fetch)
    root = tmp_path / "root"
    with pytest.raises(OSError, match="connection reset"):
        load_cifar("cifar100", root=root, download=True)
    assert list(root.iterdir()) == []


def test_unsafe_archive_member_is_refused(tmp_path):
    tar = tmp_path / "evil.tar.gz"
    with tarfile.open(tar, "w:gz") as t:
        payload = b"gotcha"
        info = tarfile.TarInfo("../escaped.txt")
        info.size = len(payload)
        t.addfile(info, io.BytesIO(payload))
    md5 = hashlib.md5(tar.read_bytes()).hexdigest()
    root = tmp_path / "root"
    with pytest.raises(RuntimeError, match="Refusing"):
        download_cifar("cifar10", root, url=tar.as_uri(), md5=md5)
    assert not (tmp_path / "escaped.txt").exists()
    assert not (root / "cifar-10-batches-py").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".")]  # no temp left


# ----------------------------------------------------------------------------- augmentation

def test_random_crop_flip_shape_and_seed():
    image = torch.rand(3, 32, 32)
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    outs1 = [random_crop_flip(image, generator=g1) for _ in range(5)]
    outs2 = [random_crop_flip(image, generator=g2) for _ in range(5)]
    for a, b in zip(outs1, outs2):
        assert a.shape == (3, 32, 32) and a.dtype == image.dtype
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(not torch.equal(a, image) for a in outs1)


def test_random_crop_flip_is_a_shifted_or_flipped_crop():
    image = torch.arange(2 * 6 * 6, dtype=torch.float32).view(2, 6, 6)
    for seed in range(10):
        out = random_crop_flip(image, padding=0, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(out, image) or torch.equal(out, image.flip(-1))
        out = random_crop_flip(image, padding=2, generator=torch.Generator().manual_seed(seed))
        padded = torch.nn.functional.pad(image, (2, 2, 2, 2))
        crops = [padded[:, i:i + 6, j:j + 6] for i in range(5) for j in range(5)]
        assert any(torch.equal(out, c) or torch.equal(out, c.flip(-1)) for c in crops)


def test_cifar_augmentation_train_only_and_seeded(tmp_path):
    write_cifar(tmp_path, "cifar10")
    b = load_cifar("cifar10", root=tmp_path, val_fraction=0.5)
    torch.manual_seed(0)
    first = [b.train[i][0] for i in range(len(b.train))]
    torch.manual_seed(0)
    again = [b.train[i][0] for i in range(len(b.train))]
    for a, c in zip(first, again):
        torch.testing.assert_close(a, c, rtol=0, atol=0)
    plain = CIFARDataset(b.train.images, b.train.labels.numpy(), (0.5,) * 3, (0.25,) * 3)
    assert torch.equal(plain[0][0], plain[0][0])
    assert torch.equal(b.test[0][0], b.test[0][0]) and torch.equal(b.val[0][0], b.val[0][0])


def test_cifar_dataset_rejects_wrong_layout():
    with pytest.raises(ValueError, match="uint8"):
        CIFARDataset(np.zeros((2, 3, 32, 32), np.uint8), np.zeros(2), (0,) * 3, (1,) * 3)


# ----------------------------------------------------------------------------- loaders, names

def test_make_loaders_seeded_shuffle():
    bundle = load_digits(seed=0)
    first = [make_loaders(bundle, batch_size=32, seed=1).train for _ in range(2)]
    ya, yb = (torch.cat([y for _, y in loader]) for loader in first)
    assert torch.equal(ya, yb)
    other = torch.cat([y for _, y in make_loaders(bundle, batch_size=32, seed=2).train])
    assert not torch.equal(ya, other)
    train, val, test = make_loaders(bundle, batch_size=32)
    x, y = next(iter(train))
    assert x.shape == (32, 1, 8, 8) and y.shape == (32,)
    assert torch.equal(torch.cat([y for _, y in test]), bundle.test.tensors[1])
    with pytest.raises(ValueError, match="batch_size"):
        make_loaders(bundle, batch_size=0)


def test_load_dataset_dispatch_and_unknown_name():
    a, b = load_dataset("digits", seed=2), load_digits(seed=2)
    assert torch.equal(a.val.tensors[0], b.val.tensors[0])
    with pytest.raises(ValueError, match="valid names.*digits.*cifar10.*cifar100"):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="cifar10"):
        download_cifar("imagenet", "unused")


# ----------------------------------------------------------------------------- plain view

def test_cifar_split_is_the_archive_in_file_order_unaugmented(tmp_path):
    written = write_cifar(tmp_path, "cifar10", per_file=3)
    train = data.cifar_split("cifar10", tmp_path)
    assert len(train) == 15 and not train.augment
    rows = np.concatenate([r for r, _ in written["train"]])          # data_batch_1 first
    np.testing.assert_array_equal(train.images, rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
    torch.manual_seed(0)
    a = train[4][0]
    torch.manual_seed(1)
    torch.testing.assert_close(train[4][0], a, rtol=0, atol=0)      # no random augmentation
    test = data.cifar_split("cifar10", tmp_path, split="test")
    assert len(test) == 6 and int(test[2][1]) == written["test"][0][1][2]
    with pytest.raises(ValueError, match="split"):
        data.cifar_split("cifar10", tmp_path, split="val")
    with pytest.raises(FileNotFoundError, match="not found"):
        data.cifar_split("cifar10", tmp_path / "nowhere")
