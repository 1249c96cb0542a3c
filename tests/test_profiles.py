"""Profiles (tiny / colab / paper), the SNNLAB_PROFILE variable and seed_everything."""
import dataclasses
import random

import numpy as np
import pytest
import torch

from snnlab.data import DATASETS
from snnlab.profiles import (PROFILES, RECIPES, Profile, get_profile, seed_everything,
                             training_recipe)
from snnlab.train import TrainConfig


def test_default_profile_is_tiny_when_env_unset(monkeypatch):
    monkeypatch.delenv("SNNLAB_PROFILE", raising=False)
    assert get_profile().name == "tiny"
    monkeypatch.setenv("SNNLAB_PROFILE", "")
    assert get_profile().name == "tiny"


@pytest.mark.parametrize("value,expected", [("colab", "colab"), (" Paper ", "paper"),
                                            ("tiny", "tiny")])
def test_profile_from_env(monkeypatch, value, expected):
    monkeypatch.setenv("SNNLAB_PROFILE", value)
    assert get_profile().name == expected


def test_argument_wins_over_env(monkeypatch):
    monkeypatch.setenv("SNNLAB_PROFILE", "paper")
    assert get_profile("tiny").name == "tiny"


def test_unknown_profile_lists_valid_names(monkeypatch):
    with pytest.raises(ValueError, match=r"unknown profile 'huge'.*\['colab', 'paper', 'tiny'\]"):
        get_profile("huge")
    monkeypatch.setenv("SNNLAB_PROFILE", "gpu")
    with pytest.raises(ValueError, match="SNNLAB_PROFILE"):
        get_profile()
    with pytest.raises(TypeError, match="str"):
        get_profile(3)


def test_profiles_are_frozen_and_replaceable():
    tiny = get_profile("tiny")
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny.epochs = 1
    short = dataclasses.replace(tiny, epochs=1)
    assert short.epochs == 1 and tiny.epochs == PROFILES["tiny"].epochs


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_every_profile_is_consistent(name):
    profile = PROFILES[name]
    assert isinstance(profile, Profile) and profile.name == name
    assert profile.dataset in DATASETS
    assert profile.T >= 1 and profile.batch_size >= 1 and profile.epochs >= 1
    config = TrainConfig.from_profile(profile)       # every recipe is a valid TrainConfig
    assert (config.epochs, config.lr, config.optimizer) == (profile.epochs, profile.lr,
                                                            profile.optimizer)
    assert profile.to_dict()["name"] == name


def test_profile_budgets_are_ordered():
    tiny, colab, paper = PROFILES["tiny"], PROFILES["colab"], PROFILES["paper"]
    assert tiny.dataset == "digits" and colab.dataset == paper.dataset == "cifar10"
    assert paper.epochs >= 100 and paper.T in (5, 6)
    assert tiny.epochs <= colab.epochs <= paper.epochs


def test_seed_everything_repeats_all_generators():
    def draw():
        return random.random(), np.random.rand(), torch.rand(3)

    assert seed_everything(7) == 7
    a = draw()
    seed_everything(7)
    b = draw()
    assert a[0] == b[0] and a[1] == b[1]
    torch.testing.assert_close(a[2], b[2], rtol=0, atol=0)
    seed_everything(8)
    assert draw()[0] != a[0]


@pytest.mark.parametrize("bad,error", [(-1, ValueError), (2**32, ValueError),
                                       (1.5, TypeError), (True, TypeError)])
def test_seed_everything_rejects_bad_seeds(bad, error):
    with pytest.raises(error, match="seed"):
        seed_everything(bad)


@pytest.mark.parametrize("name", ["tiny", "colab"])
def test_small_profiles_retrain_with_the_baseline_recipe(name):
    # the chapters' stored outputs were made with these settings: they must not move
    profile = PROFILES[name]
    base = TrainConfig.from_profile(profile)
    assert TrainConfig.from_profile(profile, "darts") == base
    assert TrainConfig.from_profile(profile, "madarts") == dataclasses.replace(
        base, epochs=profile.madarts_retrain_epochs)
    assert TrainConfig.from_profile(profile, "spikedhs") == dataclasses.replace(
        base, epochs=profile.spikedhs_retrain_epochs)
    for recipe in RECIPES:
        assert training_recipe(profile, recipe)["batch_size"] == profile.batch_size
    assert (base.cutout, base.aux_weight, base.grad_clip, base.drop_path_max) == (0, 0, None, None)
    assert profile.val_fraction == {"tiny": 0.15, "colab": 0.1}[name]  # the loaders' defaults


def test_paper_profile_uses_the_published_retraining_recipes():
    paper = PROFILES["paper"]
    darts = TrainConfig.from_profile(paper, "darts")      # DARTS A.2.1, quark0 train.py
    assert (darts.epochs, darts.optimizer, darts.lr, darts.lr_min, darts.momentum,
            darts.weight_decay, darts.schedule) == (600, "sgd", 0.025, 0.0, 0.9, 3e-4, "cosine")
    assert (darts.cutout, darts.aux_weight, darts.grad_clip, darts.drop_path_max) == (
        16, 0.4, 5.0, 0.2)
    assert training_recipe(paper, "darts")["batch_size"] == 96
    madarts = TrainConfig.from_profile(paper, "madarts")  # unknown: DARTS's recipe
    assert madarts == dataclasses.replace(darts, epochs=paper.madarts_retrain_epochs)
    spikedhs = TrainConfig.from_profile(paper, "spikedhs")  # SpikeDHS train.sh, train.py
    assert (spikedhs.epochs, spikedhs.lr, spikedhs.lr_min, spikedhs.weight_decay) == (
        100, 0.025, 0.0, 3e-4)
    assert (spikedhs.cutout, spikedhs.aux_weight, spikedhs.grad_clip,
            spikedhs.drop_path_max) == (16, 0.4, 5.0, None)
    assert training_recipe(paper, "spikedhs")["batch_size"] == 50
    assert TrainConfig.from_profile(paper) == TrainConfig.from_profile(paper, "baseline")
    assert paper.val_fraction == 0.0                      # all 50,000 images, val = test
    with pytest.raises(ValueError, match="recipe must be one of"):
        training_recipe(paper, "snasnet")


def test_val_fraction_zero_validates_on_the_test_set():
    from snnlab.data import load_dataset
    bundle = load_dataset("digits", val_fraction=0.0)
    held_out = load_dataset("digits")
    assert bundle.val is bundle.test
    assert len(bundle.train) == len(held_out.train) + len(held_out.val)
