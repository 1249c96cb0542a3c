"""fit / evaluate: determinism, resume equivalence, atomic checkpoints, bad input."""
import math
import os

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import snnlab.train as train_module
from snnlab.data import cutout
from snnlab.models import SpikingCNN
from snnlab.profiles import seed_everything
from snnlab.train import (TrainConfig, evaluate, fit, load_checkpoint, save_checkpoint)

HISTORY_KEYS = {"epoch", "train_loss", "train_acc", "val_loss", "val_acc", "lr", "seconds"}


def _quadrant_data(n: int, seed: int) -> TensorDataset:
    """Images [n, 1, 8, 8]: class c (0..3) has a bright quadrant c plus noise."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 4, (n,), generator=g)
    x = 0.3 * torch.rand(n, 1, 8, 8, generator=g)
    for c in range(4):
        r, col = divmod(c, 2)
        x[y == c, :, 4 * r:4 * r + 4, 4 * col:4 * col + 4] += 0.7
    return TensorDataset(x, y)


def _loaders(seed: int = 0, n_train: int = 96, batch_size: int = 16):
    """A shuffling train loader with its own generator (as make_loaders builds) and a val loader."""
    train = DataLoader(_quadrant_data(n_train, 1), batch_size=batch_size, shuffle=True,
                       generator=torch.Generator().manual_seed(seed))
    val = DataLoader(_quadrant_data(32, 2), batch_size=batch_size)
    return train, val


def _model(seed: int = 0) -> nn.Module:
    """A small SpikingCNN behind input dropout, so that epochs draw from torch's global RNG."""
    torch.manual_seed(seed)
    return nn.Sequential(nn.Dropout(0.1),
                         SpikingCNN(1, 4, widths=(4, 8), T=2, image_size=8))


def _config(**kw) -> TrainConfig:
    base = dict(epochs=3, optimizer="sgd", lr=0.05, momentum=0.9, weight_decay=1e-4,
                label_smoothing=0.1, seed=0)
    return TrainConfig(**{**base, **kw})


def _strip_seconds(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def _assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], rtol=0, atol=0, msg=f"parameter {k} differs")


class _Killed(Exception):
    """Stands for the process being killed in the middle of an epoch."""


def test_fit_history_and_learning():
    model = _model()
    train, val = _loaders()
    history = fit(model, train, val, _config(epochs=4, lr=0.1), device="cpu", progress=False)
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    assert all(set(row) == HISTORY_KEYS for row in history)
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert history[-1]["val_acc"] > 0.5                   # 4 classes: chance is 0.25
    lrs = [row["lr"] for row in history]                  # cosine: starts at lr, decreasing
    assert lrs[0] == 0.1 and lrs == sorted(lrs, reverse=True)
    no_val = fit(_model(), train, None, _config(epochs=1), device="cpu", progress=False)
    assert no_val[0]["val_loss"] is None and no_val[0]["val_acc"] is None


@pytest.mark.parametrize("optimizer", ["sgd", "adam", "adamw"])
def test_same_seed_gives_identical_runs(optimizer):
    runs = []
    for _ in range(2):
        model = _model(seed=0)
        train, val = _loaders(seed=0)
        config = _config(epochs=2, optimizer=optimizer, lr=0.01 if optimizer != "sgd" else 0.05)
        history = fit(model, train, val, config, device="cpu", progress=False)
        runs.append((model, history))
    assert _strip_seconds(runs[0][1]) == _strip_seconds(runs[1][1])
    _assert_same_weights(runs[0][0], runs[1][0])


def test_resume_after_kill_equals_uninterrupted_run(tmp_path, monkeypatch):
    config = _config(epochs=3, checkpoint_every=1)
    # the reference: three epochs in one go
    reference = _model(seed=0)
    train, val = _loaders(seed=0)
    ref_history = fit(reference, train, val, config, device="cpu", progress=False)

    # the same run, killed while training epoch 3 (after the epoch-2 checkpoint)
    path = tmp_path / "run.pt"
    real_epoch = train_module._train_one_epoch

    def killed_in_epoch_3(*args, **kwargs):
        if args[7] == 3:   # the epoch argument
            raise _Killed
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "_train_one_epoch", killed_in_epoch_3)
    train, val = _loaders(seed=0)
    with pytest.raises(_Killed):
        fit(_model(seed=0), train, val, config, device="cpu", checkpoint=path, progress=False)
    monkeypatch.setattr(train_module, "_train_one_epoch", real_epoch)
    assert load_checkpoint(path)["epoch"] == 2

    # a new process: different initial weights and fresh loaders; the checkpoint restores all
    torch.manual_seed(1234)
    resumed = _model(seed=99)
    train, val = _loaders(seed=0)
    history = fit(resumed, train, val, config, device="cpu", checkpoint=path, resume=True,
                  progress=False)
    assert _strip_seconds(history) == _strip_seconds(ref_history)
    _assert_same_weights(resumed, reference)
    state = load_checkpoint(path, config)
    assert state["epoch"] == 3 and len(state["history"]) == 3
    assert state["config"]["epochs"] == 3 and "rng" in state and "snnlab_version" in state


def test_resume_of_finished_run_returns_its_history(tmp_path):
    path = tmp_path / "done.pt"
    train, val = _loaders()
    first = fit(_model(), train, val, _config(epochs=1), device="cpu", checkpoint=path,
                progress=False)
    model = _model(seed=5)
    again = fit(model, *_loaders(), _config(epochs=1), device="cpu", checkpoint=path,
                resume=True, progress=False)
    assert again == first
    torch.testing.assert_close(model.state_dict()["1.classifier.module.weight"],
                               load_checkpoint(path)["model"]["1.classifier.module.weight"],
                               rtol=0, atol=0)


def test_resume_checks_config_and_model(tmp_path):
    path = tmp_path / "run.pt"
    fit(_model(), *_loaders(), _config(epochs=1), device="cpu", checkpoint=path, progress=False)
    with pytest.raises(ValueError, match=r"different TrainConfig.*lr: checkpoint 0.05 vs now 0.1"):
        fit(_model(), *_loaders(), _config(epochs=1, lr=0.1), device="cpu", checkpoint=path,
            resume=True, progress=False)
    other = SpikingCNN(1, 4, widths=(4,), T=2, image_size=8)
    with pytest.raises(ValueError, match="different model"):
        fit(other, *_loaders(), _config(epochs=1), device="cpu", checkpoint=path, resume=True,
            progress=False)
    # checkpoint_every does not change the result, so it may differ
    fit(_model(), *_loaders(), _config(epochs=1, checkpoint_every=5), device="cpu",
        checkpoint=path, resume=True, progress=False)


def test_resume_needs_an_existing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="resume=False"):
        fit(_model(), *_loaders(), _config(epochs=1), device="cpu",
            checkpoint=tmp_path / "missing.pt", resume=True, progress=False)
    with pytest.raises(ValueError, match="checkpoint"):
        fit(_model(), *_loaders(), _config(epochs=1), device="cpu", resume=True, progress=False)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(RuntimeError, match="could not read checkpoint"):
        load_checkpoint(junk)


def test_failed_save_keeps_previous_checkpoint_and_leaves_no_temp_file(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.pt"
    save_checkpoint(path, {"epoch": 1})
    before = path.read_bytes()

    def broken_save(obj, f):
        f.write(b"half a checkpoint")
        raise OSError("disk full")

    monkeypatch.setattr(train_module.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"epoch": 2})
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.pt"]


class _NanAfter(nn.Module):
    """Wraps a model; from the ``n``-th training forward on, its logits are NaN."""

    def __init__(self, model: nn.Module, n: int):
        super().__init__()
        self.model, self.n, self.calls = model, n, 0

    def forward(self, x):
        out = self.model(x)
        if self.training:
            self.calls += 1
            if self.calls >= self.n:
                return out * float("nan")
        return out


def test_nan_loss_raises_and_keeps_last_good_checkpoint(tmp_path):
    path = tmp_path / "run.pt"
    train, val = _loaders(n_train=64, batch_size=16)        # 4 batches per epoch
    model = _NanAfter(_model(), n=6)                          # epoch 2, batch index 1
    with pytest.raises(RuntimeError, match=r"loss is nan at epoch 2, batch 1.*learning rate"):
        fit(model, train, val, _config(epochs=3), device="cpu", checkpoint=path,
            progress=False)
    state = load_checkpoint(path)
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values()
               if t.is_floating_point())
    assert os.listdir(tmp_path) == ["run.pt"]


def test_evaluate_keys_and_ranges():
    model = _model()
    model.train()
    _, val = _loaders()
    result = evaluate(model, val, device="cpu")
    assert {"loss", "accuracy", "images", "nos_per_image", "sops_per_image",
            "macs_per_image", "energy_per_image_uJ"} <= set(result)
    assert 0.0 <= result["accuracy"] <= 1.0 and result["images"] == 32
    assert math.isfinite(result["loss"]) and result["nos_per_image"] >= 0
    assert result["energy_per_image_uJ"] > 0
    assert model.training                                     # mode restored
    quick = evaluate(model, val, device="cpu", count_spikes=False)
    assert set(quick) == {"loss", "accuracy", "images"}
    assert quick["accuracy"] == result["accuracy"]


def test_evaluate_counts_correct_predictions():
    class Oracle(nn.Module):           # predicts class 0 for every image
        def forward(self, x):
            return torch.zeros(x.shape[0], 4).index_fill_(1, torch.tensor([0]), 1.0)

    data = TensorDataset(torch.zeros(10, 1, 8, 8), torch.tensor([0] * 7 + [1] * 3))
    result = evaluate(Oracle(), DataLoader(data, batch_size=4), device="cpu",
                      count_spikes=False)
    assert result["accuracy"] == pytest.approx(0.7) and result["images"] == 10


def test_progress_bar_runs():
    fit(_model(), *_loaders(n_train=32), _config(epochs=1), device="cpu", progress=True)


@pytest.mark.parametrize("kw,match", [
    (dict(optimizer="rmsprop"), "optimizer"), (dict(schedule="step"), "schedule"),
    (dict(epochs=0), "epochs"), (dict(lr=-1.0), "lr"), (dict(lr=float("nan")), "lr"),
    (dict(grad_clip=0.0), "grad_clip"), (dict(label_smoothing=1.0), "label_smoothing"),
    (dict(lr=0.1, lr_min=0.2), "lr_min"),
])
def test_train_config_rejects_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


def test_bad_fit_arguments():
    with pytest.raises(TypeError, match="TrainConfig"):
        fit(_model(), *_loaders(), config={"epochs": 1}, device="cpu", progress=False)
    with pytest.raises(ValueError, match="device"):
        fit(_model(), *_loaders(), _config(epochs=1), device="gpu", progress=False)
    empty = DataLoader(TensorDataset(torch.zeros(0, 1, 8, 8), torch.zeros(0, dtype=torch.long)))
    with pytest.raises(ValueError, match="no batches"):
        fit(_model(), empty, None, _config(epochs=1), device="cpu", progress=False)
    with pytest.raises(ValueError, match="no batches"):
        evaluate(_model(), empty, device="cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a CPU-only machine")
def test_cuda_request_without_cuda_is_explained():
    with pytest.raises(RuntimeError, match="CUDA is not available"):
        fit(_model(), *_loaders(), _config(epochs=1), device="cuda", progress=False)


def test_grad_clip_and_constant_schedule_run():
    history = fit(_model(), *_loaders(), _config(epochs=2, grad_clip=1.0, schedule="constant"),
                  device="cpu", progress=False)
    assert [row["lr"] for row in history] == [0.05, 0.05]


def test_from_profile_overrides():
    from snnlab.profiles import get_profile
    config = TrainConfig.from_profile(get_profile("tiny"), epochs=1, grad_clip=5.0)
    assert config.epochs == 1 and config.grad_clip == 5.0
    with pytest.raises(TypeError, match="unknown TrainConfig field"):
        TrainConfig.from_profile(get_profile("tiny"), batch=3)
    with pytest.raises(TypeError, match="Profile"):
        TrainConfig.from_profile({"epochs": 1})


def test_seeded_model_init_is_repeatable():
    seed_everything(3)
    a = SpikingCNN(1, 4, widths=(4,), T=2)
    seed_everything(3)
    b = SpikingCNN(1, 4, widths=(4,), T=2)
    _assert_same_weights(a, b)


def test_nan_weights_after_last_step_are_not_checkpointed(tmp_path, monkeypatch):
    path = tmp_path / "run.pt"
    model = _model()
    real_epoch = train_module._train_one_epoch

    def poisoning_epoch(*args, **kwargs):   # epoch 2's last optimizer step leaves NaN weights
        result = real_epoch(*args, **kwargs)
        if args[7] == 2:
            with torch.no_grad():
                next(model.parameters()).fill_(float("nan"))
        return result

    monkeypatch.setattr(train_module, "_train_one_epoch", poisoning_epoch)
    with pytest.raises(RuntimeError, match="NaN/inf during epoch 2"):
        fit(model, *_loaders(n_train=32, batch_size=16), _config(epochs=3), device="cpu",
            checkpoint=path, progress=False)
    state = load_checkpoint(path)
    assert state["epoch"] == 1
    assert all(torch.isfinite(t).all() for t in state["model"].values()
               if t.is_floating_point())


# ---- the retraining extras: cutout, gradient clipping, auxiliary loss, drop-path ramp ----------

def _zeroed_box(zeroed: torch.Tensor):
    """Row range and column range of the True pixels of ``zeroed`` [H, W]."""
    rows = zeroed.any(1).nonzero().flatten()
    cols = zeroed.any(0).nonzero().flatten()
    return (rows.min().item(), rows.max().item() + 1), (cols.min().item(), cols.max().item() + 1)


@pytest.mark.parametrize("size", [16, 5])
def test_cutout_zeroes_one_clipped_square_per_image_and_nothing_else(size):
    torch.manual_seed(0)
    x = 1.0 + torch.rand(64, 3, 32, 32)                               # no zeros to begin with
    torch.manual_seed(5)
    out = cutout(x, size)
    assert out.shape == x.shape and torch.equal(x, x.clamp(min=1.0))  # input untouched
    zeroed = out == 0
    assert torch.equal(zeroed, zeroed[:, :1].expand_as(zeroed))       # all channels alike
    torch.testing.assert_close(out[~zeroed], x[~zeroed], rtol=0, atol=0)
    full = 0
    for z in zeroed[:, 0]:
        (r0, r1), (c0, c1) = _zeroed_box(z)
        assert z.sum() == (r1 - r0) * (c1 - c0)                       # one solid rectangle
        for lo, hi in ((r0, r1), (c0, c1)):                           # size, or cut by a border
            assert hi - lo == size or (hi - lo < size and (lo == 0 or hi == 32))
        full += z.sum().item() == size * size
    assert full > 5                                                   # many lie inside
    torch.manual_seed(5)
    torch.testing.assert_close(cutout(x, size), out, rtol=0, atol=0)  # torch's RNG decides


def test_cutout_on_sequences_and_bad_input():
    torch.manual_seed(1)
    out = cutout(torch.ones(3, 4, 2, 16, 16), 6)                      # [T, B, C, H, W]
    assert torch.equal(out[0], out[2])                                # same square at every step
    assert all(0 < (out[0, b] == 0).sum() <= 2 * 36 for b in range(4))
    with pytest.raises(ValueError, match="cutout"):
        cutout(torch.ones(4, 16, 16), 6)
    with pytest.raises(ValueError, match="TrainConfig.cutout"):
        TrainConfig(cutout=-1)


def test_grad_clip_bounds_the_gradient_norm(monkeypatch):
    norms = []
    real = train_module._make_optimizer

    def recording(model, config):
        """The usual optimizer, noting the global gradient norm before every step."""
        optimizer = real(model, config)

        def note_norm(opt, args, kwargs):
            grads = [p.grad.flatten() for p in model.parameters() if p.grad is not None]
            norms.append(torch.linalg.vector_norm(torch.cat(grads)).item())
        optimizer.register_step_pre_hook(note_norm)
        return optimizer

    monkeypatch.setattr(train_module, "_make_optimizer", recording)
    fit(_model(), *_loaders(), _config(epochs=1), device="cpu", progress=False)
    assert max(norms) > 0.05                                          # so the clip below bites
    norms.clear()
    fit(_model(), *_loaders(), _config(epochs=1, grad_clip=0.05), device="cpu", progress=False)
    assert len(norms) == 6 and max(norms) <= 0.05 * (1 + 1e-5)


class _TwoHeads(nn.Module):
    """Returns (logits, aux_logits) in training mode and logits in eval, as DARTS's networks."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body, self.main, self.aux = nn.Linear(64, 8), nn.Linear(8, 4), nn.Linear(8, 4)

    def forward(self, x):
        h = torch.tanh(self.body(x.flatten(1)))                      # [B, 8]
        return (self.main(h), self.aux(h)) if self.training else self.main(h)


def test_aux_loss_is_ce_plus_weighted_aux_ce_on_one_step():
    data = _quadrant_data(16, 3)
    loader = DataLoader(data, batch_size=16)
    config = _config(epochs=1, lr=0.5, momentum=0.0, weight_decay=0.0, label_smoothing=0.0,
                     schedule="constant", aux_weight=0.4)
    model = _TwoHeads()
    history = fit(model, loader, None, config, device="cpu", progress=False)

    manual = _TwoHeads()                                              # the same initial weights
    x, y = data.tensors
    logits, aux_logits = manual(x)
    loss = F.cross_entropy(logits, y) + 0.4 * F.cross_entropy(aux_logits, y)
    loss.backward()
    assert history[0]["train_loss"] == pytest.approx(loss.item(), rel=1e-6)
    assert history[0]["train_acc"] == (logits.argmax(1) == y).float().mean().item()
    with torch.no_grad():
        for p in manual.parameters():
            p -= 0.5 * p.grad                                         # one plain SGD step
    for a, b in zip(model.parameters(), manual.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_aux_weight_and_model_must_agree():
    loader = DataLoader(_quadrant_data(16, 3), batch_size=16)
    with pytest.raises(TypeError, match="aux_weight=0.4 needs a model that returns"):
        fit(_model(), loader, None, _config(epochs=1, aux_weight=0.4), device="cpu",
            progress=False)
    with pytest.raises(TypeError, match="returned a pair"):
        fit(_TwoHeads(), loader, None, _config(epochs=1), device="cpu", progress=False)
    with pytest.raises(ValueError, match="aux_weight"):
        TrainConfig(aux_weight=-0.1)


class _DropPathProbe(nn.Module):
    """A small SpikingCNN behind dropout of probability ``drop_path_prob`` on the input;
    records that probability and its input at every training forward."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.drop_path_prob = 0.0
        self.net = SpikingCNN(1, 4, widths=(4, 8), T=2, image_size=8)
        self.seen = []

    def forward(self, x):
        if self.training:
            self.seen.append((self.drop_path_prob, x.detach().clone()))
        return self.net(F.dropout(x, self.drop_path_prob, self.training))


def test_drop_path_prob_follows_the_linear_ramp_and_cutout_reaches_the_model():
    model = _DropPathProbe()
    train, _ = _loaders(n_train=32, batch_size=16)
    fit(model, train, None, _config(epochs=4, drop_path_max=0.2, cutout=4), device="cpu",
        progress=False)
    assert [p for p, _ in model.seen[::2]] == pytest.approx([0.0, 0.05, 0.1, 0.15])
    assert all((x == 0).flatten(1).sum(1).min() >= 4 for _, x in model.seen)  # a square each
    with pytest.raises(TypeError, match="drop_path_prob"):
        fit(_model(), train, None, _config(epochs=1, drop_path_max=0.2), device="cpu",
            progress=False)
    with pytest.raises(ValueError, match="drop_path_max"):
        TrainConfig(drop_path_max=1.0)


def test_resume_is_exact_with_cutout_drop_path_ramp_clip_and_aux(tmp_path, monkeypatch):
    from snnlab.darts import DiscreteNetwork
    from snnlab.genotypes import DARTS_V2

    def net(seed):
        torch.manual_seed(seed)
        return DiscreteNetwork(DARTS_V2, C=2, num_classes=4, layers=3, T=2, in_channels=1,
                               image_size=8, drop_path_prob=0.0, auxiliary=True)

    config = _config(epochs=3, cutout=4, drop_path_max=0.3, grad_clip=0.5, aux_weight=0.4)
    reference = net(0)
    ref_history = fit(reference, *_loaders(n_train=48), config, device="cpu", progress=False)

    path = tmp_path / "run.pt"
    real_epoch = train_module._train_one_epoch

    def killed_in_epoch_3(*args, **kwargs):
        if args[7] == 3:
            raise _Killed
        return real_epoch(*args, **kwargs)

    monkeypatch.setattr(train_module, "_train_one_epoch", killed_in_epoch_3)
    with pytest.raises(_Killed):
        fit(net(0), *_loaders(n_train=48), config, device="cpu", checkpoint=path, progress=False)
    monkeypatch.setattr(train_module, "_train_one_epoch", real_epoch)

    torch.manual_seed(1234)
    resumed = net(99)
    history = fit(resumed, *_loaders(n_train=48), config, device="cpu", checkpoint=path,
                  resume=True, progress=False)
    assert _strip_seconds(history) == _strip_seconds(ref_history)
    _assert_same_weights(resumed, reference)
    assert resumed.drop_path_prob == pytest.approx(0.2)               # 0.3 * 2 / 3 in epoch 3
