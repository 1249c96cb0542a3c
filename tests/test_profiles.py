"""Profiles (tiny / colab / paper), the SNNLAB_PROFILE variable and seed_everything."""
import dataclasses
import random

import numpy as np
import pytest
import torch

from snnlab.data import DATASETS
from snnlab.profiles import (PROFILES, RECIPES, DartsSettings, MADartsSettings, Profile,
                             SNASNetSettings, SpikeDHSSettings, get_profile, seed_everything,
                             training_recipe)
from snnlab.train import TrainConfig

# Every setting of every profile as the one flat Profile (before the per-method settings,
# commit 00e3e55) held it: (tiny, colab, paper). Written by reading the old fields.
FLAT_SETTINGS = {
    'name': ('tiny', 'colab', 'paper'),
    'dataset': ('digits', 'cifar10', 'cifar10'),
    'T': (4, 4, 5),
    'batch_size': (64, 128, 64),
    'epochs': (10, 15, 300),
    'optimizer': ('adam', 'sgd', 'sgd'),
    'lr': (0.003, 0.1, 0.1),
    'lr_min': (0.0, 0.001, 0.001),
    'momentum': (0.9, 0.9, 0.9),
    'weight_decay': (0.0, 0.0005, 0.0005),
    'label_smoothing': (0.0, 0.0, 0.0),
    'widths': ((32, 64), (64, 128, 256), (64, 128, 256, 512)),
    'tau': (2.0, 2.0, 1.3333333333333333),
    'num_workers': (0, 2, 4),
    'amp': (False, True, True),
    'seed': (0, 0, 0),
    'val_fraction': (0.15, 0.1, 0.0),
    'smoke': (False, False, False),       # snnlab.smoke; a field added after the flat Profile
    'snasnet_channels': (16, 64, 256),
    'snasnet_fc': (128, 256, 1024),
    'snasnet_votes': (10, 10, 10),
    'snasnet_last_pool': (2, 4, 4),
    'snasnet_candidates': (100, 500, 5000),
    'snasnet_score_batch_size': (256, 256, 256),
    'snasnet_lr': (0.01, 0.1, 0.1),
    'snasnet_rank_cells': (8, 8, 20),
    'snasnet_rank_epochs': (3, 2, 20),
    'darts_epochs': (6, 20, 50),
    'darts_layers': (3, 5, 8),
    'darts_channels': (4, 8, 16),
    'darts_T': (2, 2, 2),
    'darts_batch_size': (64, 64, 64),
    'darts_lr': (0.3, 0.1, 0.025),
    'darts_lr_min': (0.001, 0.001, 0.001),
    'darts_arch_lr': (0.03, 0.003, 0.0003),
    'darts_max_images': (None, 10000, None),
    'darts_eval_layers': (5, 6, 20),
    'darts_eval_channels': (8, 16, 36),
    'darts_drop_path': (0.0, 0.1, 0.2),
    'darts_eval_epochs': (None, None, 600),
    'darts_eval_batch_size': (None, None, 96),
    'darts_eval_lr': (None, None, 0.025),
    'darts_eval_lr_min': (None, None, 0.0),
    'darts_eval_weight_decay': (None, None, 0.0003),
    'darts_eval_cutout': (0, 0, 16),
    'darts_eval_aux_weight': (0.0, 0.0, 0.4),
    'darts_eval_grad_clip': (None, None, 5.0),
    'darts_eval_drop_path_ramp': (False, False, True),
    'spikedhs_epochs': (4, 8, 50),
    'spikedhs_layers': (4, 6, 8),
    'spikedhs_levels': (3, 4, 4),
    'spikedhs_filters': (4, 4, 8),
    'spikedhs_T': (4, 4, 6),
    'spikedhs_batch_size': (64, 64, 100),
    'spikedhs_lr': (0.4, 0.4, 0.4),
    'spikedhs_lr_min': (0.001, 0.001, 0.001),
    'spikedhs_arch_lr': (0.003, 0.003, 0.001),
    'spikedhs_max_images': (None, 10000, None),
    'spikedhs_dgs_every': (2, 2, 5),
    'spikedhs_dgs_batches': (1, 10, 200),
    'spikedhs_retrain_filters': (8, 16, 48),
    'spikedhs_tau_lr': (0.03, 0.01, None),
    'spikedhs_retrain_epochs': (3, 5, 100),
    'spikedhs_retrain_batch_size': (None, None, 50),
    'spikedhs_retrain_lr': (None, None, 0.025),
    'spikedhs_retrain_lr_min': (None, None, 0.0),
    'spikedhs_retrain_weight_decay': (None, None, 0.0003),
    'spikedhs_retrain_cutout': (0, 0, 16),
    'spikedhs_retrain_aux_weight': (0.0, 0.0, 0.4),
    'spikedhs_retrain_grad_clip': (None, None, 5.0),
    'madarts_retrain_epochs': (3, 5, 600),
    'madarts_eval_layers': (3, 6, 20),
    'madarts_eval_channels': (8, 16, 64),
    'madarts_attentions': (('none', 'eca', 'cbam'), ('none', 'eca', 'cbam', 'temporal'),
                           ('none', 'eca', 'cbam', 'temporal', 'multi')),
    'madarts_placements': (('cell_output', 'node_input'),) * 3,
}


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
        base, epochs=profile.madarts.retrain_epochs)
    assert TrainConfig.from_profile(profile, "spikedhs") == dataclasses.replace(
        base, epochs=profile.spikedhs.retrain_epochs)
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
    assert madarts == dataclasses.replace(darts, epochs=paper.madarts.retrain_epochs)
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


METHOD_SETTINGS = {"snasnet": SNASNetSettings, "darts": DartsSettings, "madarts": MADartsSettings,
                   "spikedhs": SpikeDHSSettings}


def _split(flat_name):
    """'darts_eval_layers' -> ('darts', 'eval_layers'); (None, name) for the common fields."""
    method, _, setting = flat_name.partition("_")
    return (method, setting) if method in METHOD_SETTINGS else (None, flat_name)


@pytest.mark.parametrize("index,name", [(0, "tiny"), (1, "colab"), (2, "paper")])
def test_every_setting_keeps_its_value(index, name):
    profile = PROFILES[name]
    for flat_name, values in FLAT_SETTINGS.items():
        method, setting = _split(flat_name)
        holder = profile if method is None else getattr(profile, method)
        value = getattr(holder, setting)
        assert value == values[index] and type(value) is type(values[index]), flat_name
    nested = {f.name for f in dataclasses.fields(Profile)}
    moved = {_split(flat_name)[0] for flat_name in FLAT_SETTINGS} - {None}
    assert nested == {n for n in FLAT_SETTINGS if _split(n)[0] is None} | moved


@pytest.mark.parametrize("index,name", [(0, "tiny"), (1, "colab"), (2, "paper")])
def test_old_flat_names_read_the_same_values_with_a_warning(index, name):
    profile = PROFILES[name]
    for flat_name, values in FLAT_SETTINGS.items():
        method, setting = _split(flat_name)
        if method is None:
            continue
        with pytest.warns(DeprecationWarning, match=rf"use profile\.{method}\.{setting}\."):
            value = getattr(profile, flat_name)
        assert value == values[index] and type(value) is type(values[index]), flat_name
    with pytest.raises(AttributeError, match="darts_epoch"):
        profile.darts_epoch                       # a typo is still an AttributeError


def test_method_settings_are_replaced_per_method():
    tiny = get_profile("tiny")
    short = dataclasses.replace(tiny, darts=dataclasses.replace(tiny.darts, epochs=1))
    assert short.darts.epochs == 1 and tiny.darts.epochs == FLAT_SETTINGS["darts_epochs"][0]
    assert short.darts.layers == tiny.darts.layers and short.spikedhs == tiny.spikedhs
    with pytest.raises(dataclasses.FrozenInstanceError):
        tiny.darts.epochs = 1
    with pytest.raises(TypeError, match=r"Profile\.darts must be a DartsSettings.*dict"):
        dataclasses.replace(tiny, darts={"epochs": 1})


def test_old_flat_names_still_replace_with_a_warning():
    tiny = get_profile("tiny")
    with pytest.warns(DeprecationWarning, match="darts.eval_layers"):
        flat = dataclasses.replace(tiny, epochs=2, darts_eval_layers=2, darts_T=3,
                                   madarts_attentions=("none",))
    assert (flat.epochs, flat.darts.eval_layers, flat.darts.T) == (2, 2, 3)
    assert flat.madarts.attentions == ("none",) and flat.darts.layers == tiny.darts.layers
    assert flat == dataclasses.replace(
        tiny, epochs=2, darts=dataclasses.replace(tiny.darts, eval_layers=2, T=3),
        madarts=dataclasses.replace(tiny.madarts, attentions=("none",)))
    with pytest.warns(DeprecationWarning):
        built = Profile(name="x", dataset="digits", T=2, batch_size=8, epochs=1, snasnet_fc=32)
    assert built.snasnet == SNASNetSettings(fc=32)
    with pytest.raises(TypeError, match="darts_epoch"):
        dataclasses.replace(tiny, darts_epoch=1)


def test_to_dict_nests_each_methods_settings():
    paper = get_profile("paper")
    settings = paper.to_dict()
    assert settings["darts"]["eval_epochs"] == 600 and settings["snasnet"]["lr"] == 0.1
    assert settings["madarts"]["attentions"] == paper.madarts.attentions
    assert set(settings) == {f.name for f in dataclasses.fields(Profile)}
