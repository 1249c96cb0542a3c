"""Datasets for the book: scikit-learn digits (the embedded default) and CIFAR-10/100.

Every loader returns a :class:`DataBundle`: train/val/test datasets plus the facts a
model needs (``num_classes``, ``in_channels``, ``image_size``). Items are static images
``x: [C, H, W]`` float32 and ``y: []`` int64; a spiking model adds the time axis itself
(``snnlab.encoding.direct(x, T)`` gives ``[T, B, C, H, W]``).

* ``"digits"``: the 1,797 8x8 handwritten digits that ship inside scikit-learn
  (``sklearn.datasets.load_digits``; no download), scaled to [0, 1] by ``pixel / 16``.
* ``"cifar10"`` / ``"cifar100"``: the official python archives of Krizhevsky (2009),
  "Learning Multiple Layers of Features from Tiny Images",
  https://www.cs.toronto.edu/~kriz/cifar.html. They are read from an extracted
  ``cifar-10-batches-py`` / ``cifar-100-python`` folder under ``root``; with
  ``download=True`` the archive is fetched, verified by MD5 after it arrives, and
  extracted. Training augmentation is the standard random crop 32 with padding 4 plus a
  horizontal flip (the recipe of the SNASNet code, ``utils.py``), written in plain torch.

Splits are stratified (each class keeps its share) and fixed by ``seed``.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import pickle
import shutil
import tarfile
import urllib.error
import urllib.request
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, TensorDataset

from .safeio import atomic_path, temp_dir

__all__ = [
    "DATASETS",
    "DataBundle",
    "Loaders",
    "CIFARDataset",
    "default_root",
    "load_digits",
    "load_cifar",
    "cifar_split",
    "download_cifar",
    "load_dataset",
    "make_loaders",
    "random_crop_flip",
    "cutout",
]

DATASETS = ("digits", "cifar10", "cifar100")


@dataclass(frozen=True)
class DataBundle:
    """Train/val/test datasets of one task, with the shapes a model needs.

    Each dataset yields ``(x, y)`` with ``x: [in_channels, image_size, image_size]``
    float32 and ``y`` an int64 scalar in ``[0, num_classes)``.
    """

    name: str
    train: Dataset
    val: Dataset
    test: Dataset
    num_classes: int
    in_channels: int
    image_size: int
    classes: tuple[str, ...]


class Loaders(NamedTuple):
    """The three DataLoaders of a bundle; unpack as ``train, val, test = loaders``."""

    train: DataLoader
    val: DataLoader
    test: DataLoader


def default_root() -> Path:
    """Where datasets live: ``$SNNLAB_DATA`` if set, else ``./data``."""
    return Path(os.environ.get("SNNLAB_DATA", "data"))


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value < 1.0:
        raise ValueError(f"{name} must be in [0, 1); got {value!r}. Example: {name}=0.1.")


def _stratified_split(labels: np.ndarray, fractions: Sequence[float],
                      seed: int) -> list[np.ndarray]:
    """Split indices so that each class keeps its share, reproducibly under ``seed``.

    labels: [N] class ids. For each fraction f, every class gives ``round(f * n_class)``
    of its samples (in a seeded random order); the rest form the last split.
    Returns ``len(fractions) + 1`` sorted index arrays that cover ``range(N)`` once.
    """
    rng = np.random.default_rng(seed)
    parts: list[list[np.ndarray]] = [[] for _ in range(len(fractions) + 1)]
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        start = 0
        for k, f in enumerate(fractions):
            n = int(round(f * len(idx)))
            parts[k].append(idx[start:start + n])
            start += n
        parts[-1].append(idx[start:])
    return [np.sort(np.concatenate(p)) for p in parts]


# ----------------------------------------------------------------------------- digits

def load_digits(seed: int = 0, val_fraction: float = 0.15,
                test_fraction: float = 0.2) -> DataBundle:
    """scikit-learn's 8x8 digits, split into stratified train/val/test sets.

    Args:
        seed: fixes the split; the same seed always gives the same split.
        val_fraction, test_fraction: share of each class held out for val and test.
            ``val_fraction=0`` trains on everything but the test set and validates on the
            test set (what the official NAS codes do; see :func:`load_cifar`).
    Returns:
        DataBundle of ``TensorDataset`` s: images ``[N, 1, 8, 8]`` float32 in [0, 1]
        (``pixel / 16``) and labels ``[N]`` int64; 10 classes.

    Example:
        >>> b = load_digits(seed=0)
        >>> b.train[0][0].shape
        torch.Size([1, 8, 8])
    """
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ValueError(f"val_fraction + test_fraction must be < 1 to leave training data; "
                         f"got {val_fraction} + {test_fraction}.")
    from sklearn.datasets import load_digits as _sklearn_digits  # lazy: keeps import fast

    raw = _sklearn_digits()
    images = torch.as_tensor(raw.images, dtype=torch.float32).unsqueeze(1) / 16.0  # [N,1,8,8]
    labels = torch.as_tensor(raw.target, dtype=torch.int64)                       # [N]
    test_idx, val_idx, train_idx = _stratified_split(
        raw.target, (test_fraction, val_fraction), seed)

    def subset(idx: np.ndarray) -> TensorDataset:
        idx_t = torch.as_tensor(idx)
        return TensorDataset(images[idx_t], labels[idx_t])

    test = subset(test_idx)
    val = test if val_fraction == 0 else subset(val_idx)
    return DataBundle(name="digits", train=subset(train_idx), val=val, test=test,
                      num_classes=10, in_channels=1, image_size=8,
                      classes=tuple(str(d) for d in range(10)))


# ----------------------------------------------------------------------------- CIFAR

@dataclass(frozen=True)
class _CifarSpec:
    folder: str                 # the folder inside the archive
    url: str
    md5: str                    # of the .tar.gz, from the official page
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str
    num_classes: int
    mean: tuple[float, float, float]  # per-channel statistics of the training images
    std: tuple[float, float, float]


_CIFAR = {
    "cifar10": _CifarSpec(
        "cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        tuple(f"data_batch_{i}" for i in range(1, 6)), ("test_batch",), "batches.meta",
        "labels", "label_names", 10,
        (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
    "cifar100": _CifarSpec(
        "cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        ("train",), ("test",), "meta",
        "fine_labels", "fine_label_names", 100,
        (0.5071, 0.4865, 0.4409), (0.2673, 0.2564, 0.2762)),
}


def random_crop_flip(image: torch.Tensor, padding: int = 4,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Random crop with zero padding, then a horizontal flip with probability 1/2.

    image: [C, H, W]; returns [C, H, W] of the same dtype. Random numbers come from
    ``generator``, or from torch's global RNG when it is None.
    """
    _, h, w = image.shape
    padded = F.pad(image, (padding, padding, padding, padding))      # [C, H+2p, W+2p]
    top, left = torch.randint(0, 2 * padding + 1, (2,), generator=generator).tolist()
    out = padded[:, top:top + h, left:left + w]                       # [C, H, W]
    if torch.rand((), generator=generator) < 0.5:
        out = out.flip(-1)
    return out


def cutout(x: torch.Tensor, size: int) -> torch.Tensor:
    """Zero one ``size`` x ``size`` square per image, centred anywhere (DeVries & Taylor 2017).

    x: images ``[B, C, H, W]`` (or sequences ``[T, B, C, H, W]``: the same square at every
    step). Returns a new tensor of the same shape and dtype; all channels of an image lose
    the same square. As DARTS's ``utils.Cutout`` (quark0 ``cnn/utils.py``), the centre is
    uniform over the image and the square is clipped at the borders, so near an edge fewer
    than ``size**2`` pixels are zeroed (for an odd ``size`` quark0 zeroes ``size - 1`` rows and
    columns; here always ``size``). It runs on the batch (on ``x``'s device) after
    normalization, as DARTS's transform does (zero = the mean colour). The centres come
    from torch's global CPU RNG, so a checkpointed run resumes exactly.

    Example:
        >>> cutout(torch.ones(2, 3, 32, 32), 16).shape
        torch.Size([2, 3, 32, 32])
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"cutout size must be an int >= 1; got {size!r}.")
    if x.dim() not in (4, 5):
        raise ValueError(f"cutout expects images [B, C, H, W] or sequences [T, B, C, H, W]; "
                         f"got {tuple(x.shape)}.")
    B, H, W = x.shape[-4], x.shape[-2], x.shape[-1]
    cy = torch.randint(0, H, (B, 1)).to(x.device)                    # [B, 1] centre rows
    cx = torch.randint(0, W, (B, 1)).to(x.device)
    rows = torch.arange(H, device=x.device)                           # [H]
    cols = torch.arange(W, device=x.device)
    top, left = cy - size // 2, cx - size // 2                        # may lie outside: clipped
    in_rows = (rows >= top) & (rows < top + size)                     # [B, H]
    in_cols = (cols >= left) & (cols < left + size)                   # [B, W]
    square = in_rows[:, None, :, None] & in_cols[:, None, None, :]    # [B, 1, H, W]
    return x.masked_fill(square, 0)


class CIFARDataset(Dataset):
    """CIFAR images kept as uint8 in memory, turned into normalized tensors per item.

    Args:
        images: [N, 32, 32, 3] uint8 (HWC, as the archive stores them after a reshape).
        labels: [N] integer class ids.
        mean, std: per-channel statistics used for ``(x - mean) / std``.
        augment: apply :func:`random_crop_flip` (padding 4) before normalizing.

    ``ds[i]`` returns ``(x [3, 32, 32] float32, y int64)``. Augmentation draws from torch's
    global RNG: with ``num_workers=0`` seed it (``torch.manual_seed``) for identical
    crops; worker processes are seeded by PyTorch from the DataLoader's generator.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, mean: Sequence[float],
                 std: Sequence[float], augment: bool = False) -> None:
        if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 [N, H, W, 3]; got {images.dtype} "
                             f"{tuple(images.shape)}.")
        if len(labels) != len(images):
            raise ValueError(f"labels has {len(labels)} entries but images has {len(images)}.")
        self.images = images
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)
        self.augment = augment

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.from_numpy(self.images[i]).permute(2, 0, 1).float() / 255.0  # [3, H, W]
        if self.augment:
            x = random_crop_flip(x, padding=4)  # pads with black, like torchvision
        return (x - self.mean) / self.std, self.labels[i]


def _unpickle(path: Path) -> dict[str, Any]:
    """Read one archive file; keys come back as str whether pickled as bytes or str.

    Unpickling runs code from the file: read only archives you trust (downloads are
    checked against the official MD5). A missing, empty, truncated or foreign file
    raises an error that names it and says how to get a good copy."""
    fix = (f"The folder {path.parent} is damaged: delete it and load again with "
           "download=True (or extract the official archive there again).")
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR file {path} is missing; the folder is incomplete. {fix}")
    try:
        with open(path, "rb") as f:
            # The official files are Python-2 pickles: encoding="bytes" gives b"data" keys.
            obj = pickle.load(f, encoding="bytes")
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            ImportError, IndexError, UnicodeDecodeError) as err:
        size = path.stat().st_size
        raise RuntimeError(f"CIFAR file {path} ({size} bytes) cannot be read: "
                           f"{type(err).__name__}: {err} (empty, truncated or not a CIFAR "
                           f"pickle). {fix}") from err
    if not isinstance(obj, dict):
        raise RuntimeError(f"CIFAR file {path} holds a {type(obj).__name__}, not the dict of "
                           f"the official format. {fix}")
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def _batch_arrays(batch: dict, path: Path, label_key: str,
                  num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Check one unpickled batch; return pixels ``[n, 3072]`` uint8 and labels ``[n]`` int64.

    The official files hold uint8 pixels: other dtypes are refused rather than cast
    (float pixels in [0, 1] would become a black dataset), as are labels outside
    ``[0, num_classes)`` and a label count that differs from the image count.
    """
    fix = f"Delete {path.parent} and download or extract the official archive again."
    missing = [k for k in ("data", label_key) if k not in batch]
    if missing:
        raise RuntimeError(f"CIFAR file {path} lacks the key(s) {missing}; it has "
                           f"{sorted(batch)} (a CIFAR-10 batch has 'data' and 'labels', "
                           f"CIFAR-100 'data' and 'fine_labels'). {fix}")
    data = np.asarray(batch["data"])
    if data.dtype != np.uint8:
        raise RuntimeError(f"CIFAR file {path}: 'data' must be uint8 pixels 0..255 as in the "
                           f"official files; got {data.dtype} (casting float pixels in [0, 1] "
                           "would make every image black). Write the pixels as "
                           f"(x * 255).round().astype(np.uint8). {fix}")
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise RuntimeError(f"CIFAR file {path}: 'data' must be [N, 3072] (3 planes of 32x32); "
                           f"got {tuple(data.shape)}. {fix}")
    labels = np.asarray(batch[label_key])
    if labels.ndim != 1 or len(labels) != len(data) or not np.issubdtype(labels.dtype, np.integer):
        raise RuntimeError(f"CIFAR file {path}: '{label_key}' must be {len(data)} integer labels, "
                           f"one per image; got {labels.dtype} {tuple(labels.shape)}. {fix}")
    if len(labels) and (labels.min() < 0 or labels.max() >= num_classes):
        raise RuntimeError(f"CIFAR file {path}: labels must be in [0, {num_classes}); got "
                           f"{int(labels.min())}..{int(labels.max())}. {fix}")
    return data, labels.astype(np.int64)


def _read_batches(folder: Path, files: Sequence[str], label_key: str,
                  num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Concatenate batch files: images [N, 32, 32, 3] uint8 and labels [N] int64."""
    xs, ys = [], []
    for name in files:
        data, labels = _batch_arrays(_unpickle(folder / name), folder / name, label_key,
                                     num_classes)
        # each row is the R plane, then G, then B (1024 values each, row-major)
        xs.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))  # [n, 32, 32, 3]
        ys.append(labels)
    return np.ascontiguousarray(np.concatenate(xs)), np.concatenate(ys)


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, dest: Path) -> None:
    """Copy ``url`` (https:// or file://) into the file ``dest``.

    Raises RuntimeError naming the URL and the offline fix when it cannot be reached."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(dest, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, TimeoutError, ConnectionError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise RuntimeError(f"could not download {url} ({type(err).__name__}: {reason}): this "
                           "machine seems offline or the site is unreachable. Fetch the archive "
                           "on a machine with internet and copy it (or its extracted folder) into "
                           "the data root; the archive is checked by MD5 before use.") from err


def _download(url: str, archive: Path, md5: str) -> None:
    """Download ``url`` to ``archive`` through a locked ``.part`` temp file, MD5-checked.

    A killed download leaves a ``.part`` file that the next call sweeps; a wrong
    checksum leaves nothing."""
    with atomic_path(archive, suffix=".part", what="download") as part:
        _fetch(url, part)
        got = _md5(part)
        if got != md5:
            raise RuntimeError(f"Checksum mismatch for {url}: expected MD5 {md5}, got {got}. "
                               "The download is corrupt or incomplete (nothing was kept); retry.")


def _safe_extract(archive: Path, dest: Path) -> None:
    """Extract a .tar.gz into ``dest``, refusing members that would land outside it."""
    with tarfile.open(archive, "r:gz") as tar:
        for m in tar.getmembers():
            if (Path(m.name).is_absolute() or ".." in Path(m.name).parts
                    or not (m.isfile() or m.isdir())):
                raise RuntimeError(f"Refusing to extract {archive}: member {m.name!r} is an "
                                   "absolute path, climbs out with '..', or is a link.")
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4: the stdlib checks too
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)


def download_cifar(name: str = "cifar10", root: str | Path | None = None,
                   url: str | None = None, md5: str | None = None) -> Path:
    """Download, verify and extract an official CIFAR archive; return its folder.

    The archive is written to a locked ``.part`` temp file next to its final place and
    moved there with ``os.replace`` only after its MD5 matches, so a failed download
    leaves nothing; ``.part`` files and extraction folders of killed runs are swept. An
    archive already there is checked again: a damaged one is deleted (with a warning)
    and downloaded again, so a retry does not fail the same way forever. The folder is
    extracted into a temp directory and moved into place the same way.

    Args:
        name: "cifar10" or "cifar100".
        root: parent directory (default :func:`default_root`).
        url, md5: override the official address and checksum (tests use ``file://``).
    Returns:
        ``root / "cifar-10-batches-py"`` (or ``"cifar-100-python"``).
    Raises:
        RuntimeError: checksum mismatch (expected vs got), an unsafe archive, or no
            network (naming the URL and the offline fix).
    """
    spec = _spec(name)
    root = Path(root) if root is not None else default_root()
    url, md5 = url or spec.url, md5 or spec.md5
    folder = root / spec.folder
    if folder.is_dir():
        return folder
    root.mkdir(parents=True, exist_ok=True)
    archive = root / url.rsplit("/", 1)[-1]
    damaged = ""
    if archive.is_file():              # re-checked every time: a bad copy must not stay
        got = _md5(archive)
        if got != md5:
            damaged = f"{archive} was damaged (expected MD5 {md5}, got {got}) and was deleted"
            warnings.warn(f"{damaged}; downloading it again.", stacklevel=2)
            archive.unlink()
    if not archive.is_file():
        try:
            _download(url, archive, md5)
        except (RuntimeError, OSError) as err:
            if damaged:
                raise RuntimeError(f"{damaged}; downloading it again failed: {err}") from err
            raise
    with temp_dir(root, ".extract-") as staging:
        _safe_extract(archive, staging)
        if not (staging / spec.folder).is_dir():
            raise RuntimeError(f"{archive} does not contain the folder {spec.folder!r}; "
                               "it is not the official archive.")
        os.replace(staging / spec.folder, folder)
    return folder


def _spec(name: str) -> _CifarSpec:
    if name not in _CIFAR:
        raise ValueError(f"CIFAR name must be one of {sorted(_CIFAR)}; got {name!r}.")
    return _CIFAR[name]


def load_cifar(name: str = "cifar10", root: str | Path | None = None,
               download: bool = False, seed: int = 0, val_fraction: float = 0.1,
               augment: bool = True) -> DataBundle:
    """CIFAR-10 or CIFAR-100 (fine labels) from the official python archive.

    Args:
        name: "cifar10" or "cifar100".
        root: directory holding ``cifar-10-batches-py`` / ``cifar-100-python``
            (default :func:`default_root`: ``$SNNLAB_DATA`` or ``./data``).
        download: fetch the archive from the official site if the folder is missing.
        seed, val_fraction: the val set is a stratified, seeded share of the training
            images (0.1 -> 5,000 of 50,000). ``0`` trains on all 50,000 and the val set
            *is the test set*, as the official DARTS and SpikeDHS codes do (their
            "valid" loader reads the test split): then validation accuracy is test
            accuracy and must not be used to pick a model.
        augment: random crop + flip on the training set (never on val or test).
    Returns:
        DataBundle of :class:`CIFARDataset` s; items ``x [3, 32, 32]`` float32, ``y`` int64.
    Raises:
        FileNotFoundError: the folder is missing and ``download`` is False.
    """
    _check_fraction("val_fraction", val_fraction)
    spec, folder = _cifar_folder(name, root, download)
    x_train, y_train = _read_batches(folder, spec.train_files, spec.label_key, spec.num_classes)
    x_test, y_test = _read_batches(folder, spec.test_files, spec.label_key, spec.num_classes)
    names = _unpickle(folder / spec.meta_file)[spec.names_key]
    classes = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    val_idx, train_idx = _stratified_split(y_train, (val_fraction,), seed)

    def make(x: np.ndarray, y: np.ndarray, aug: bool) -> CIFARDataset:
        return CIFARDataset(x, y, spec.mean, spec.std, augment=aug)

    test = make(x_test, y_test, False)
    val = test if val_fraction == 0 else make(x_train[val_idx], y_train[val_idx], False)
    return DataBundle(name=name, train=make(x_train[train_idx], y_train[train_idx], augment),
                      val=val, test=test, num_classes=spec.num_classes,
                      in_channels=3, image_size=32, classes=classes)


def _cifar_folder(name: str, root, download: bool):
    """``(spec, folder)`` of the extracted archive, downloading it first if asked."""
    spec = _spec(name)
    root = Path(root) if root is not None else default_root()
    folder = root / spec.folder
    if not folder.is_dir():
        if not download:
            raise FileNotFoundError(
                f"{name} not found: expected the extracted folder {folder.resolve()}. "
                f"Pass download=True when online, or place the extracted "
                f"'{spec.folder}' folder from {spec.url} there (or set SNNLAB_DATA).")
        download_cifar(name, root)  # for a mirror, call download_cifar(url=...) first
    return spec, folder


def cifar_split(name: str = "cifar10", root: str | Path | None = None, split: str = "train",
                download: bool = False) -> CIFARDataset:
    """One split of CIFAR as stored: every image, in file order, unaugmented.

    ``load_cifar`` holds out a stratified val share and augments the training set,
    which re-indexes and alters images; a protocol defined on the archive's order
    (a training-free score on images ``i..j`` of ``data_batch_1``, say) needs this
    plain view instead. Item ``k`` is image ``k`` of the split (``data_batch_1``
    first), normalised with the training mean and std as :func:`load_cifar` does.

    Args:
        name: "cifar10" or "cifar100".
        root, download: as :func:`load_cifar`.
        split: ``"train"`` (50,000 images) or ``"test"`` (10,000).
    Returns:
        a :class:`CIFARDataset` (``augment=False``); items ``x [3, 32, 32]`` float32, ``y`` int64.

    Example::

        images = cifar_split("cifar10", "data")           # 50,000 training images
        x = torch.stack([images[k][0] for k in range(256)])  # the first 256: [256, 3, 32, 32]
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}.")
    spec, folder = _cifar_folder(name, root, download)
    files = spec.train_files if split == "train" else spec.test_files
    images, labels = _read_batches(folder, files, spec.label_key, spec.num_classes)
    return CIFARDataset(images, labels, spec.mean, spec.std, augment=False)


def load_dataset(name: str, root: str | Path | None = None, download: bool = False,
                 seed: int = 0, **options: Any) -> DataBundle:
    """Load a dataset by name: one of :data:`DATASETS`.

    ``"digits"`` ignores ``root`` and ``download`` (it ships with scikit-learn); other
    ``options`` go to :func:`load_digits` or :func:`load_cifar`.
    """
    if name == "digits":
        return load_digits(seed=seed, **options)
    if name in _CIFAR:
        return load_cifar(name, root=root, download=download, seed=seed, **options)
    raise ValueError(f"Unknown dataset {name!r}; valid names are {list(DATASETS)}.")


def make_loaders(bundle: DataBundle, batch_size: int = 64, seed: int = 0,
                 num_workers: int = 0) -> Loaders:
    """DataLoaders for a bundle: the train loader shuffles with a seeded generator.

    Batches are ``x [B, C, H, W]`` and ``y [B]``. The same seed gives the same order of
    training batches; val and test keep their order. With ``num_workers > 0`` each
    worker's RNG (and so the augmentation) is seeded from the same generator.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int; got {batch_size!r}.")
    generator = torch.Generator().manual_seed(seed)
    train = DataLoader(bundle.train, batch_size=batch_size, shuffle=True,
                       generator=generator, num_workers=num_workers)
    val = DataLoader(bundle.val, batch_size=batch_size, num_workers=num_workers)
    test = DataLoader(bundle.test, batch_size=batch_size, num_workers=num_workers)
    return Loaders(train, val, test)
