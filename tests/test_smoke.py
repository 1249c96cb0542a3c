"""snnlab.smoke: the fake CIFAR-10 archive and the toy-size profiles of smoke mode."""
import dataclasses
import pickle

import numpy as np
import pytest
import torch

from snnlab.data import load_cifar, make_loaders
from snnlab.profiles import PROFILES, get_profile, training_recipe
from snnlab.smoke import (SMOKE_CAPS, fake_cifar_images, smoke_enabled, smoke_profile,
                          write_fake_cifar)
from snnlab.train import TrainConfig

OFFICIAL_FILES = ["batches.meta", "data_batch_1", "data_batch_2", "data_batch_3",
                  "data_batch_4", "data_batch_5", "test_batch"]


# ----------------------------------------------------------------------------- the archive

def test_archive_has_the_official_layout_and_pickles(tmp_path):
    folder = write_fake_cifar(tmp_path, train=53, test=20)
    assert folder == tmp_path / "cifar-10-batches-py"
    assert sorted(p.name for p in folder.iterdir()) == OFFICIAL_FILES
    sizes = []
    for name in OFFICIAL_FILES[1:]:
        with open(folder / name, "rb") as f:
            batch = pickle.load(f, encoding="bytes")
        assert {b"data", b"labels", b"batch_label", b"filenames"} <= set(batch)
        assert batch[b"data"].dtype == np.uint8 and batch[b"data"].shape[1] == 3072
        assert len(batch[b"labels"]) == len(batch[b"data"]) == len(batch[b"filenames"])
        assert all(type(label) is int for label in batch[b"labels"])
        sizes.append(len(batch[b"labels"]))
    assert sizes == [11, 11, 11, 10, 10, 20]
    with open(folder / "batches.meta", "rb") as f:
        meta = pickle.load(f, encoding="bytes")
    assert meta[b"label_names"][0] == b"airplane" and len(meta[b"label_names"]) == 10


def test_load_cifar_reads_it_with_cifar_shapes_and_balanced_labels(tmp_path):
    write_fake_cifar(tmp_path, train=300, test=100)
    bundle = load_cifar("cifar10", root=tmp_path, val_fraction=0.1, seed=0)
    assert (bundle.num_classes, bundle.in_channels, bundle.image_size) == (10, 3, 32)
    assert (len(bundle.train), len(bundle.val), len(bundle.test)) == (270, 30, 100)
    x, y = bundle.train[0]
    assert x.shape == (3, 32, 32) and x.dtype == torch.float32 and y.dtype == torch.int64
    train_labels = torch.cat([bundle.train.labels, bundle.val.labels])
    assert torch.bincount(train_labels, minlength=10).tolist() == [30] * 10
    assert torch.bincount(bundle.test.labels, minlength=10).tolist() == [10] * 10
    xb, yb = next(iter(make_loaders(bundle, batch_size=16, num_workers=1).train))
    assert xb.shape == (16, 3, 32, 32) and yb.shape == (16,)


def test_same_seed_same_bytes_other_seed_other_images(tmp_path):
    a, b, c = (write_fake_cifar(tmp_path / name, train=10, test=5, seed=seed)
               for name, seed in (("a", 0), ("b", 0), ("c", 1)))
    assert (a / "data_batch_1").read_bytes() == (b / "data_batch_1").read_bytes()
    assert (a / "data_batch_1").read_bytes() != (c / "data_batch_1").read_bytes()


def test_images_are_learnable_but_not_trivial():
    # Class = a coloured square at a fixed place: a nearest-class-mean rule on 8x8-pooled
    # images (what a conv + pool + linear readout can learn) sorts held-out images; the
    # noise makes two images of a class differ and single pixels unreliable.
    rng = np.random.default_rng(0)
    labels = np.arange(1000) % 10
    images = fake_cifar_images(labels, rng).reshape(-1, 3, 32, 32).astype(np.float64) / 255
    pooled = images.reshape(-1, 3, 4, 8, 4, 8).mean(axis=(3, 5)).reshape(len(labels), -1)
    train, test = slice(0, 500), slice(500, None)

    def nearest_mean_accuracy(features):
        centres = np.stack([features[train][labels[train] == c].mean(0) for c in range(10)])
        guess = np.argmin(((features[test, None, :] - centres[None]) ** 2).sum(-1), axis=1)
        return (guess == labels[test]).mean()

    assert nearest_mean_accuracy(pooled) > 0.95
    assert nearest_mean_accuracy(images[:, :, 5, 5]) < 0.5          # one pixel: mostly guessing
    assert images[labels == 0].std(axis=0).mean() > 0.1              # no two images alike


def test_writer_refuses_an_existing_folder_and_bad_sizes(tmp_path):
    write_fake_cifar(tmp_path, train=10, test=5)
    with pytest.raises(FileExistsError, match="cifar-10-batches-py already exists"):
        write_fake_cifar(tmp_path)
    with pytest.raises(ValueError, match="train must be an int >= 5"):
        write_fake_cifar(tmp_path / "other", train=4)
    with pytest.raises(ValueError, match="test must be a positive int"):
        write_fake_cifar(tmp_path / "other", test=0)
    assert not (tmp_path / "other").exists() or not any((tmp_path / "other").iterdir())


# ----------------------------------------------------------------------------- the shrink

@pytest.mark.parametrize("name", ["colab", "paper"])
def test_smoke_profile_keeps_the_code_path_and_cuts_every_count(name):
    full, small = PROFILES[name], smoke_profile(PROFILES[name])
    assert (small.name, small.dataset, small.optimizer, small.amp, small.smoke) == \
        (full.name, full.dataset, full.optimizer, full.amp, True)
    assert len(small.widths) == len(full.widths) and small.widths[0] <= 8
    assert 0 < small.num_workers <= full.num_workers          # still the worker path
    for holder, caps in SMOKE_CAPS.items():
        before = full if holder == "profile" else getattr(full, holder)
        after = small if holder == "profile" else getattr(small, holder)
        for field, cap in caps.items():
            value = getattr(after, field)
            if getattr(before, field) is None and field != "max_images":
                assert value is None, (holder, field)       # "as the baseline" stays so
            else:
                assert value <= cap and value <= (getattr(before, field) or cap), (holder, field)
    # switches are the code path under test: unchanged
    assert small.darts.eval_cutout == full.darts.eval_cutout
    assert small.darts.eval_drop_path_ramp == full.darts.eval_drop_path_ramp
    assert small.madarts.attentions == full.madarts.attentions
    assert small.madarts.placements == full.madarts.placements[:1]     # the ablation's bulk
    assert small.spikedhs.layers > small.spikedhs.levels > 1      # a path can stay at the bottom
    assert small.to_dict()["smoke"] is True and full.to_dict()["smoke"] is False
    for recipe in ("baseline", "darts", "madarts", "spikedhs"):
        config = TrainConfig.from_profile(small, recipe)
        assert config.epochs <= 2 and training_recipe(small, recipe)["batch_size"] <= 32


def test_get_profile_reads_the_switch_and_leaves_tiny_alone(monkeypatch):
    monkeypatch.delenv("SNNLAB_SMOKE", raising=False)
    assert not smoke_enabled() and get_profile("colab") == PROFILES["colab"]
    assert get_profile("colab", smoke=True) == smoke_profile(PROFILES["colab"])
    for value in ("1", "true", " YES ", "on"):
        monkeypatch.setenv("SNNLAB_SMOKE", value)
        assert smoke_enabled() and get_profile("colab").smoke
    monkeypatch.setenv("SNNLAB_PROFILE", "paper")
    assert get_profile().name == "paper" and get_profile().smoke
    assert get_profile("colab", smoke=False) == PROFILES["colab"]      # the argument wins
    assert get_profile("tiny") is PROFILES["tiny"]                      # already the CPU path
    for value in ("0", "", "no"):
        monkeypatch.setenv("SNNLAB_SMOKE", value)
        assert not get_profile("colab").smoke


def test_smoke_profile_is_frozen_and_rejects_other_types():
    small = smoke_profile(PROFILES["colab"])
    with pytest.raises(dataclasses.FrozenInstanceError):
        small.epochs = 100
    with pytest.raises(TypeError, match="Profile"):
        smoke_profile({"name": "colab"})
