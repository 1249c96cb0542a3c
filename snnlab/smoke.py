"""Smoke mode: every line a Colab user runs, executed on a CPU in seconds.

The ``colab`` profile trains on CIFAR-10 for minutes on a GPU; nothing on a laptop or in
CI can afford that, yet its code path differs from tiny's in many places: 3x32x32 images
read from the official CIFAR archive by :func:`snnlab.data.load_cifar`, DataLoaders with
worker processes, the AMP switches of :class:`snnlab.train.TrainConfig`, wider search
spaces and retraining recipes. Smoke mode runs that path at toy size:

* ``SNNLAB_SMOKE=1`` (with ``SNNLAB_PROFILE=colab``, or ``paper``) makes
  :func:`snnlab.profiles.get_profile` return :func:`smoke_profile` of the chosen profile:
  the same name, dataset and switches, every count cut (epochs, widths, candidates, images
  per search, ...). Its ``smoke`` field is True, and ``to_dict`` says so. The ``tiny``
  profile is already the CPU path and is returned unchanged.
* :func:`write_fake_cifar` writes a small archive in the official ``cifar-10-batches-py``
  layout (a few hundred images whose classes are easy to tell apart: each is a square of
  its own colour at its own place, with noise), so that :func:`snnlab.data.load_cifar`
  reads it as it reads the real one. Point ``SNNLAB_DATA`` at its root.

A smoke run checks that every cell runs and that the loose accuracy bounds a chapter
asserts on ``colab`` hold on easy data where a few SGD steps can reach them (a chapter
skips the others with ``if not profile.smoke:``); its numbers say nothing about CIFAR-10. The test
suite runs every chapter this way (``tests/test_colab_smoke.py``)::

    python -c "from snnlab.smoke import write_fake_cifar; write_fake_cifar('/tmp/smoke')"
    SNNLAB_PROFILE=colab SNNLAB_SMOKE=1 SNNLAB_DATA=/tmp/smoke jupyter nbconvert \\
        --to notebook --execute book/02_training_an_snn.ipynb --output /tmp/ch2.ipynb
"""
from __future__ import annotations

import dataclasses
import os
import pickle
from pathlib import Path
from typing import Optional

import numpy as np

from .profiles import Profile
from .safeio import temp_dir

__all__ = ["SMOKE_ENV", "SMOKE_CAPS", "smoke_enabled", "smoke_profile", "apply_smoke_switch",
           "write_fake_cifar", "fake_cifar_images"]

SMOKE_ENV = "SNNLAB_SMOKE"

SMOKE_CAPS: dict[str, dict[str, int]] = {
    # The profile's own fields. Two epochs of SGD on 270 easy images reach 0.8-0.9 accuracy
    # (chapter 2's baseline); one worker process still exercises the DataLoaders' worker path.
    "profile": dict(T=2, batch_size=32, epochs=2, num_workers=1),
    "snasnet": dict(channels=4, fc=16, candidates=30, score_batch_size=32, rank_cells=3,
                    rank_epochs=1),
    "darts": dict(epochs=2, layers=3, channels=4, batch_size=32, max_images=64,
                  eval_layers=3, eval_channels=4, eval_epochs=1, eval_batch_size=32),
    "madarts": dict(retrain_epochs=1, eval_layers=3, eval_channels=2),
    # tiny's trellis shape (4 layers over 3 levels: 32 -> 16 -> 8 here); a trellis needs more
    # layers than levels for a path to stay at the lowest level (chapter 6 decodes one).
    "spikedhs": dict(epochs=2, layers=4, levels=3, filters=2, T=2, batch_size=32, max_images=64,
                     dgs_every=1, dgs_batches=1, retrain_filters=4, retrain_epochs=1,
                     retrain_batch_size=32),
}
"""Upper bounds of the counts in a smoke profile: a field keeps ``min(value, cap)``.

``"profile"`` caps :class:`~snnlab.profiles.Profile`'s own fields, the other keys the
method settings of the same name. ``max_images=None`` (all images) becomes the cap; other
None fields stay None (a retraining recipe's "as the baseline"). Widths are cut to 8, 16,
32, ... channels per stage, keeping the number of stages. The MA-DARTS ablation keeps every attention but only its first placement (chapter 5
retrains each attention at each placement three times: the bulk of a smoke run). Switches
(AMP, cutout, auxiliary heads, drop-path) are kept: they are the code path under test.
"""
_WIDTH_CAP = 8        # the first stage's channels in smoke mode; each stage doubles it


def smoke_enabled() -> bool:
    """Whether ``$SNNLAB_SMOKE`` asks for smoke mode ("1", "true", "yes" or "on")."""
    return os.environ.get(SMOKE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def _capped(settings, caps: dict[str, int]):
    """``settings`` with each field named in ``caps`` cut to ``min(value, cap)``.

    None stays None (a retraining field's "use the baseline's value"), except for
    ``max_images``, where None means every image."""
    changes = {}
    for name, cap in caps.items():
        value = getattr(settings, name)
        if value is not None:
            changes[name] = min(value, cap)
        elif name == "max_images":
            changes[name] = cap
    return dataclasses.replace(settings, **changes)


def smoke_profile(profile: Profile) -> Profile:
    """``profile`` at toy size: same name, dataset and switches, every count cut.

    Each count is capped by :data:`SMOKE_CAPS`; ``widths`` become ``(8, 16, 32, ...)`` with
    as many stages as before; the MA-DARTS ablation keeps one attention placement;
    ``smoke`` is set to True so chapters and results can tell.

    Example:
        >>> from snnlab.profiles import get_profile
        >>> small = smoke_profile(get_profile("colab", smoke=False))
        >>> (small.name, small.dataset, small.epochs, small.widths, small.smoke)
        ('colab', 'cifar10', 2, (8, 16, 32), True)
    """
    if not isinstance(profile, Profile):
        raise TypeError(f"profile must be a snnlab.profiles.Profile; got "
                        f"{type(profile).__name__}. Use get_profile(name).")
    widths = tuple(min(w, _WIDTH_CAP * 2 ** i) for i, w in enumerate(profile.widths))
    small = _capped(profile, SMOKE_CAPS["profile"])
    methods = {method: _capped(getattr(profile, method), caps)
               for method, caps in SMOKE_CAPS.items() if method != "profile"}
    methods["madarts"] = dataclasses.replace(methods["madarts"],
                                             placements=profile.madarts.placements[:1])
    return dataclasses.replace(small, widths=widths, smoke=True, **methods)


# ----------------------------------------------------------------------------- the archive

_CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                  "ship", "truck")
# One colour per class (RGB in [0, 1]), far apart from each other.
_PALETTE = np.array([[0.9, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.2, 0.9], [0.9, 0.9, 0.1],
                     [0.9, 0.1, 0.9], [0.1, 0.9, 0.9], [0.95, 0.55, 0.1], [0.5, 0.1, 0.7],
                     [0.55, 0.55, 0.55], [0.1, 0.45, 0.25]], dtype=np.float32)


def fake_cifar_images(labels: np.ndarray, rng: np.random.Generator,
                      noise: float = 0.15) -> np.ndarray:
    """Images that a small network learns to classify in a few steps, as CIFAR stores them.

    Class ``c`` is an 8x8 square of its own colour (one of 10) at its own place (one of a
    3 x 4 grid) on a dark grey background, plus Gaussian pixel noise of standard deviation
    ``noise`` (on the [0, 1] scale). Place and colour survive the training augmentation (a
    crop shifts by at most 4 pixels), and a convolution, a pooling and a linear readout
    find them in a few dozen SGD steps, spiking or not: on these images a short run's
    accuracy is high, yet not perfect, so seeds still differ.

    Args:
        labels: [N] int class ids in ``[0, 10)``.
        rng: the NumPy generator the noise is drawn from.
        noise: pixel noise (0: clean images).
    Returns:
        [N, 3072] uint8: per image the R plane, then G, then B (32x32 each, row-major),
        the official ``data`` layout.
    """
    labels = np.asarray(labels)
    images = np.full((len(labels), 3, 32, 32), 0.2, dtype=np.float32)
    for k, c in enumerate(labels):
        row, col = divmod(int(c), 4)
        top, left = 2 + 10 * row, 8 * col
        images[k, :, top:top + 8, left:left + 8] = _PALETTE[c % len(_PALETTE), :, None, None]
    images += rng.normal(0.0, noise, size=images.shape).astype(np.float32)
    return (np.clip(images, 0.0, 1.0) * 255).round().astype(np.uint8).reshape(len(labels), 3072)


def _pickle_to(path: Path, obj: dict) -> None:
    """Pickle ``obj`` as the official files are: protocol 2, bytes keys."""
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_fake_cifar(root: str | Path, train: int = 300, test: int = 50, seed: int = 0,
                     noise: float = 0.15) -> Path:
    """Write a small CIFAR-10 archive in the official python layout under ``root``.

    ``root/cifar-10-batches-py/`` gets ``data_batch_1`` .. ``data_batch_5`` (``train``
    images split as evenly as possible), ``test_batch`` and ``batches.meta``: pickled
    dicts with bytes keys, ``b"data"`` uint8 ``[n, 3072]``, ``b"labels"`` a list of ints,
    ``b"batch_label"``, ``b"filenames"``, and ``b"label_names"`` (CIFAR-10's class
    names), exactly what :func:`snnlab.data.load_cifar` reads from the real archive.
    Labels cycle through the 10 classes, so every class has ``train // 10`` or one more
    training images. Images come from :func:`fake_cifar_images`.

    Args:
        root: the data root (what ``SNNLAB_DATA`` names); created if missing.
        train, test: numbers of images (``train`` at least 5: one per batch file).
        seed: seed of the images; the same seed writes the same bytes.
        noise: pixel noise of :func:`fake_cifar_images`.
    Returns:
        the folder ``root / "cifar-10-batches-py"``.
    Raises:
        FileExistsError: the folder is already there (delete it, or use another root).

    Example::

        folder = write_fake_cifar("/tmp/smoke")            # 300 training, 50 test images
        bundle = snnlab.load_cifar("cifar10", root="/tmp/smoke")
    """
    if isinstance(train, bool) or not isinstance(train, int) or train < 5:
        raise ValueError(f"train must be an int >= 5 (one image per batch file); got {train!r}.")
    if isinstance(test, bool) or not isinstance(test, int) or test < 1:
        raise ValueError(f"test must be a positive int; got {test!r}.")
    root = Path(root)
    folder = root / "cifar-10-batches-py"
    if folder.exists():
        raise FileExistsError(f"{folder} already exists; delete it or pass another root.")
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = [len(part) for part in np.array_split(np.arange(train), 5)]
    starts = np.cumsum([0] + sizes)             # labels cycle on across the training files
    files = [(f"data_batch_{i + 1}", starts[i], size) for i, size in enumerate(sizes)]
    with temp_dir(root, ".fake-cifar-") as staging:   # a killed run leaves no half folder
        (staging / folder.name).mkdir()
        for name, first, size in files + [("test_batch", 0, test)]:
            labels = (first + np.arange(size)) % 10
            _pickle_to(staging / folder.name / name, {
                b"batch_label": f"fake {name} (snnlab.smoke)".encode(),
                b"labels": [int(label) for label in labels],
                b"data": fake_cifar_images(labels, rng, noise),
                b"filenames": [f"fake_{name}_{k:05d}.png".encode() for k in range(size)]})
        _pickle_to(staging / folder.name / "batches.meta", {
            b"label_names": [n.encode() for n in _CIFAR10_NAMES],
            b"num_cases_per_batch": max(sizes), b"num_vis": 3072})
        os.replace(staging / folder.name, folder)
    return folder


def apply_smoke_switch(profile: Profile, smoke: Optional[bool] = None) -> Profile:
    """``profile``, cut by :func:`smoke_profile` when smoke mode is on (tiny never is).

    ``smoke`` None reads ``$SNNLAB_SMOKE``. :func:`snnlab.profiles.get_profile` returns this.
    """
    on = smoke_enabled() if smoke is None else smoke
    return smoke_profile(profile) if on and profile.name != "tiny" else profile
