"""Faults that used to give a silently wrong result: each is now refused by name.

Damaged checkpoints, checkpoints of another architecture / batch size / dataset,
NaN and inf currents and pixels, labels out of range and nonsense settings
(issue 11, "silently wrong").
"""
import math
import pickle

import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from snnlab import data
from snnlab.checkpoints import state_digest
from snnlab.models import SpikingCNN
from snnlab.neurons import LIF
from snnlab.surrogates import ATan, Dspike, FastSigmoid, Sigmoid, Triangle
from snnlab.train import TrainConfig, evaluate, fit, load_checkpoint
from test_data import write_cifar


def _dataset(n: int = 48, seed: int = 0, classes: int = 4) -> TensorDataset:
    g = torch.Generator().manual_seed(seed)
    return TensorDataset(torch.rand(n, 1, 8, 8, generator=g),
                         torch.randint(0, classes, (n,), generator=g))


def _loader(dataset=None, batch_size: int = 16, seed: int = 0) -> DataLoader:
    return DataLoader(_dataset() if dataset is None else dataset, batch_size=batch_size,
                      shuffle=True, generator=torch.Generator().manual_seed(seed))


def _model(**lif) -> nn.Module:
    torch.manual_seed(0)
    return SpikingCNN(1, 4, widths=(4,), T=2, image_size=8, **lif)


def _config(epochs: int = 2) -> TrainConfig:
    return TrainConfig(epochs=epochs, lr=0.05, seed=0)


def _trained_checkpoint(tmp_path, **lif):
    path = tmp_path / "run.pt"
    fit(_model(**lif), _loader(), None, _config(), device="cpu", checkpoint=path, progress=False)
    return path


# ----------------------------------------------------------------------------- checkpoints

@pytest.mark.parametrize("where", [0.25, 0.5, 0.75])
def test_checkpoint_with_4kib_overwritten_is_never_resumed(tmp_path, where):
    path = _trained_checkpoint(tmp_path)
    raw = bytearray(path.read_bytes())
    start = int(len(raw) * where)
    noise = np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    raw[start:start + 4096] = noise[:len(raw[start:start + 4096])]
    path.write_bytes(bytes(raw))
    with pytest.raises(RuntimeError, match="corrupted|could not read") as info:
        fit(_model(), _loader(), None, _config(), device="cpu", checkpoint=path, resume=True,
            progress=False)
    assert str(path) in str(info.value) and "fresh run" in str(info.value)


def test_changed_tensor_bytes_fail_the_integrity_hash(tmp_path):
    path = _trained_checkpoint(tmp_path)
    state = torch.load(path, weights_only=True)
    assert state["integrity"]["sha256"] == state_digest(state)
    state["model"]["features.0.conv.module.weight"][0, 0, 0, 0] += 1.0   # one weight changed
    torch.save(state, path)                                              # digest kept
    with pytest.raises(RuntimeError, match="corrupted.*SHA-256"):
        load_checkpoint(path)


def test_checkpoint_of_another_architecture_with_the_same_shapes_is_refused(tmp_path):
    path = _trained_checkpoint(tmp_path, reset="hard")
    other = _model(reset="subtract")                     # same parameters, other neuron
    assert [t.shape for t in other.state_dict().values()] == \
           [t.shape for t in _model().state_dict().values()]
    with pytest.raises(ValueError, match="architecture: checkpoint has .*reset='hard'"):
        fit(other, _loader(), None, _config(), device="cpu", checkpoint=path, resume=True,
            progress=False)


def test_resume_with_another_batch_size_or_dataset_is_refused(tmp_path):
    path = _trained_checkpoint(tmp_path)
    with pytest.raises(ValueError, match="batch_size: checkpoint 16 vs now 8"):
        fit(_model(), _loader(batch_size=8), None, _config(), device="cpu", checkpoint=path,
            resume=True, progress=False)
    with pytest.raises(ValueError, match="labels_sha"):
        fit(_model(), _loader(_dataset(seed=5)), None, _config(), device="cpu",
            checkpoint=path, resume=True, progress=False)
    history = fit(_model(), _loader(), None, _config(), device="cpu", checkpoint=path,
                  resume=True, progress=False)          # the same (finished) run resumes
    assert [row["epoch"] for row in history] == [1, 2]


# ----------------------------------------------------------------------------- NaN and inf

@pytest.mark.parametrize("reset", ["hard", "subtract"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_lif_rejects_non_finite_current_naming_the_step(reset, bad):
    x = torch.full((6, 3, 4), 0.6)
    x[2, 1, 3] = bad
    with pytest.raises(ValueError, match="time step 2, sample 1"):
        LIF(tau=2.0, reset=reset)(x)


def test_lif_finite_check_can_be_switched_off():
    lif = LIF()
    lif.check_finite = False                          # the documented escape hatch
    x = torch.ones(3, 1, 2)
    x[0, 0, 0] = math.nan
    assert torch.isnan(lif(x, record=True)[1].v_final[0, 0])


def test_evaluate_refuses_nan_images_instead_of_a_plausible_accuracy():
    dataset = _dataset()
    dataset.tensors[0][20, 0, 3, 3] = math.nan       # image 20: batch 1, image 4
    with pytest.raises(ValueError, match=r"evaluate: batch 1: images \[4\]"):
        evaluate(_model(), DataLoader(dataset, batch_size=16), device="cpu")


def test_fit_names_the_batch_with_a_nan_pixel_at_once():
    dataset = _dataset()
    dataset.tensors[0][5] = math.inf
    with pytest.raises(ValueError, match="epoch 1, batch [0-9]+: images .* NaN or inf"):
        fit(_model(), _loader(dataset), None, _config(3), device="cpu", progress=False)


@pytest.mark.parametrize("label", [-1, 4])
def test_labels_out_of_range_are_refused(label):
    dataset = _dataset()
    dataset.tensors[1][0] = label
    with pytest.raises(ValueError, match=r"labels must be class ids in \[0, 4\)"):
        fit(_model(), _loader(dataset), None, _config(), device="cpu", progress=False)
    with pytest.raises(ValueError, match=r"labels must be class ids in \[0, 4\)"):
        evaluate(_model(), DataLoader(dataset, batch_size=16), device="cpu", count_spikes=False)


def test_nan_loss_from_finite_data_names_the_layer():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4))
    with torch.no_grad():
        model[1].weight[0, 0] = math.inf
    with pytest.raises(RuntimeError, match="first layer with a NaN/inf output is '1'"):
        fit(model, _loader(), None, _config(), device="cpu", progress=False)


# ----------------------------------------------------------------------------- accepted nonsense

@pytest.mark.parametrize("threshold", [math.nan, math.inf, -0.5])
def test_lif_threshold_must_be_finite_and_not_negative(threshold):
    with pytest.raises(ValueError, match="threshold must be a finite number >= 0"):
        LIF(threshold=threshold)


@pytest.mark.parametrize("make", [lambda: ATan(alpha=-2.0), lambda: ATan(alpha=math.nan),
                                  lambda: Sigmoid(slope=0.0), lambda: Triangle(width=-1.0),
                                  lambda: FastSigmoid(slope=math.inf), lambda: Dspike(b=-1.0)])
def test_surrogate_sharpness_must_be_positive(make):
    with pytest.raises(ValueError, match="must be > 0 and finite"):
        make()


def _rewrite_batch(folder, name, **changes):
    with open(folder / name, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    batch.update({k.encode(): v for k, v in changes.items()})
    with open(folder / name, "wb") as f:
        pickle.dump(batch, f, protocol=2)


def test_cifar_labels_out_of_range_are_refused(tmp_path):
    write_cifar(tmp_path, "cifar10")
    _rewrite_batch(tmp_path / "cifar-10-batches-py", "data_batch_2", labels=[0, 1, 10, 3])
    with pytest.raises(RuntimeError, match=r"data_batch_2: labels must be in \[0, 10\)"):
        data.load_cifar("cifar10", root=tmp_path)


def test_cifar_float_pixels_are_not_cast_to_a_black_dataset(tmp_path):
    write_cifar(tmp_path, "cifar10")
    floats = np.random.default_rng(0).random((4, 3072))            # pixels in [0, 1]
    _rewrite_batch(tmp_path / "cifar-10-batches-py", "data_batch_1", data=floats)
    with pytest.raises(RuntimeError, match="data_batch_1: 'data' must be uint8.*black"):
        data.load_cifar("cifar10", root=tmp_path)


# ---- differentiable search checkpoints (the shared run loop) ----------------------------

def _tiny_darts(tmp_path, dataset, checkpoint, resume=False, epochs=1):
    from snnlab.darts import SearchNetwork
    from snnlab.darts_search import DartsConfig, darts_search
    from snnlab.search.loop import make_search_loaders
    torch.manual_seed(0)
    net = SearchNetwork(C=2, num_classes=3, layers=3, T=2, in_channels=1, image_size=8)
    cfg = DartsConfig(epochs=epochs, layers=3, C=2, T=2, batch_size=6, lr=0.1, arch_lr=3e-2)
    loaders = make_search_loaders(dataset, batch_size=6, seed=3)
    return darts_search(net, loaders.train, loaders.val, cfg, "cpu", checkpoint,
                        resume=resume, progress=False)


def _digit_like(n, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.utils.data.TensorDataset(torch.rand(n, 1, 8, 8, generator=g),
                                          torch.randint(0, 3, (n,), generator=g))


def test_search_checkpoint_of_other_data_is_refused(tmp_path):
    """Same DartsConfig, other training data: the loader fingerprint tells them apart."""
    ckpt = tmp_path / "search.pt"
    _tiny_darts(tmp_path, _digit_like(24, seed=1), ckpt, epochs=1)
    with pytest.raises(ValueError, match="labels_sha|dataset_size|batches_per_epoch"):
        _tiny_darts(tmp_path, _digit_like(36, seed=2), ckpt, resume=True, epochs=1)


def test_search_names_a_nan_training_batch(tmp_path):
    dataset = _digit_like(24, seed=1)
    dataset.tensors[0][5, 0, 0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"search epoch 1, (training|architecture) batch \d+.*NaN"):
        _tiny_darts(tmp_path, dataset, None)
