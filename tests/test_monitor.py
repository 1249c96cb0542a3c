"""Tests for snnlab.monitor: spike, SOP and MAC counts against hand and brute-force counts."""
import itertools

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnlab.layers import TimeDistributed
from snnlab.monitor import (ENERGY_AC_PJ, ENERGY_MAC_PJ, SpikeMonitor, SpikeSummary,
                            count_macs, count_sops, estimate_energy_uj)
from snnlab.neurons import LIF

T = 4


def _hand_model() -> nn.Sequential:
    """Linear(3->4) -> LIF -> Linear(4->2) -> LIF with weights chosen for known spikes.

    LIF(tau=2): decay 0.5, threshold 1, hard reset. A constant current 1.5 fires
    every step, 0.5 never (v -> 1 from below), 0.6 fires at t = 2 only when T = 4
    (v = 0.6, 0.9, 1.05 -> spike, 0.6).
    """
    fc1 = nn.Linear(3, 4, bias=False)
    fc2 = nn.Linear(4, 2, bias=False)
    with torch.no_grad():
        fc1.weight.copy_(torch.tensor([[2.0, 0, 0], [0, 2, 0], [0, 0, 2], [0, 0, 0]]))
        fc2.weight.copy_(torch.tensor([[2.0, 2, 0, 0], [0, 0, 0.6, 0]]))
    return nn.Sequential(TimeDistributed(fc1), LIF(tau=2.0), TimeDistributed(fc2), LIF(tau=2.0))


def _hand_input() -> torch.Tensor:
    # sample 0 -> currents [1.5, 0.5, 1.5, 0]: neurons 0 and 2 fire every step
    # sample 1 -> currents [1.5, 0, 0, 0]:     neuron 0 fires every step
    x = torch.tensor([[0.75, 0.25, 0.75], [0.75, 0.0, 0.0]])      # [B=2, 3], not binary
    return x.expand(T, 2, 3).clone()                               # [T, B, 3]


def test_hand_model_counts():
    model = _hand_model()
    with SpikeMonitor(model) as mon:
        out = model(_hand_input())
    s = mon.summary()
    assert isinstance(s, SpikeSummary)
    assert s.images == 2
    # layer 1: 3 firing neurons (2 + 1) x T steps = 12 spikes; layer 2: neuron 0 fires
    # always in both samples (current 2), neuron 1 once in sample 0 (current 0.6) = 9
    assert [r["name"] for r in s.layers] == ["1", "3"]
    l1, l2 = s.layers
    assert (l1["neurons"], l1["time_steps"], l1["spikes"]) == (4, T, 12)
    assert (l2["neurons"], l2["time_steps"], l2["spikes"]) == (2, T, 9)
    assert out.sum().item() == 9
    torch.testing.assert_close(l1["spikes_per_image"], 6.0)
    torch.testing.assert_close(l2["spikes_per_image"], 4.5)
    torch.testing.assert_close(l1["firing_rate"], 12 / (4 * T * 2))
    torch.testing.assert_close(l2["firing_rate"], 9 / (2 * T * 2))
    torch.testing.assert_close(s.nos_per_image, 10.5)
    # fc1 reads real-valued input: MACs = (T*B rows) * 3 * 4 = 96 -> 48 per image
    # fc2 reads the 12 spikes of layer 1, each fanning out to 2 outputs: 24 -> 12 per image
    syn = {r["name"]: r for r in s.synapses}
    assert set(syn) == {"0.module", "2.module"}
    assert (syn["0.module"]["sops_per_image"], syn["0.module"]["macs_per_image"]) == (0.0, 48.0)
    assert (syn["2.module"]["sops_per_image"], syn["2.module"]["macs_per_image"]) == (12.0, 0.0)
    assert (s.sops_per_image, s.macs_per_image) == (12.0, 48.0)
    # E = 12 * 0.9 pJ + 48 * 4.6 pJ = 231.6 pJ = 2.316e-4 uJ
    torch.testing.assert_close(s.energy_per_image_uJ, 231.6e-6, rtol=1e-9, atol=0.0)


def test_energy_constants_and_arithmetic():
    assert (ENERGY_AC_PJ, ENERGY_MAC_PJ) == (0.9, 4.6)
    torch.testing.assert_close(estimate_energy_uj(1e6, 0), 0.9)
    torch.testing.assert_close(estimate_energy_uj(0, 1e6), 4.6)
    torch.testing.assert_close(estimate_energy_uj(10, 5, e_ac_pj=1.0, e_mac_pj=2.0), 20e-6)


def test_monitor_counts_match_output_tensors():
    torch.manual_seed(0)
    model = nn.Sequential(TimeDistributed(nn.Conv2d(1, 4, 3, padding=1)), LIF(tau=2.0),
                          TimeDistributed(nn.Conv2d(4, 6, 3, stride=2, padding=1, groups=2)),
                          LIF(tau=2.0, threshold=0.2))
    x = torch.rand(3, 5, 1, 8, 8) * 4                                  # [T, B, C, H, W]
    outputs = {}
    handles = [model[i].register_forward_hook(lambda m, a, o, i=i: outputs.__setitem__(i, o))
               for i in (1, 3)]
    with SpikeMonitor(model) as mon:
        model(x)
    for h in handles:
        h.remove()
    s = mon.summary()
    assert s.images == 5
    assert outputs[3].sum() > 0, "the test needs spikes in the last layer"
    for row, i in zip(s.layers, (1, 3)):
        torch.testing.assert_close(row["spikes_per_image"], outputs[i].sum().item() / 5)
        torch.testing.assert_close(row["firing_rate"], outputs[i].mean().item())
    assert s.layers[1]["neurons"] == 6 * 4 * 4
    syn = {r["name"]: r for r in s.synapses}
    conv2 = model[2].module
    expected = count_sops(conv2, outputs[1].reshape(15, 4, 8, 8)).item() / 5
    torch.testing.assert_close(syn["2.module"]["sops_per_image"], expected)
    assert syn["0.module"]["sops_per_image"] == 0.0
    assert syn["0.module"]["macs_per_image"] == 3 * 4 * 8 * 8 * 9          # T * C_out * H * W * 9


def _brute_force_sops(conv: nn.Module, x: torch.Tensor) -> int:
    """Loop over every output and every connected input position; count nonzero inputs."""
    dims = len(conv.kernel_size)
    mode = "constant" if conv.padding_mode == "zeros" else conv.padding_mode
    pad = []
    for p in reversed(conv.padding):
        pad += [p, p]
    xp = F.pad(x, pad, mode=mode)                                      # explicit padding
    cin_g, cout_g = conv.in_channels // conv.groups, conv.out_channels // conv.groups
    out_size = [(xp.shape[2 + k] - conv.dilation[k] * (conv.kernel_size[k] - 1) - 1)
                // conv.stride[k] + 1 for k in range(dims)]
    count = 0
    for n, o in itertools.product(range(x.shape[0]), range(conv.out_channels)):
        g = o // cout_g
        for pos in itertools.product(*[range(s) for s in out_size]):
            for c in range(g * cin_g, (g + 1) * cin_g):
                for kpos in itertools.product(*[range(k) for k in conv.kernel_size]):
                    idx = tuple(pos[k] * conv.stride[k] + kpos[k] * conv.dilation[k]
                                for k in range(dims))
                    count += int(xp[(n, c) + idx] != 0)
    return count


@pytest.mark.parametrize("kwargs", [
    dict(kernel_size=3),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=3, stride=2, padding=1, groups=2),
    dict(kernel_size=(3, 2), stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2),
    dict(kernel_size=3, padding=1, padding_mode="reflect"),
])
def test_conv2d_sops_against_brute_force(kwargs):
    gen = torch.Generator().manual_seed(1)
    x = (torch.rand(2, 4, 7, 6, generator=gen) < 0.3).float()          # binary [N, C, H, W]
    conv = nn.Conv2d(4, 6, **kwargs)
    assert count_sops(conv, x).item() == _brute_force_sops(conv, x)


@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, stride=2, padding=1),
                                    dict(kernel_size=2, dilation=2, groups=2)])
def test_conv1d_sops_against_brute_force(kwargs):
    gen = torch.Generator().manual_seed(2)
    x = (torch.rand(3, 4, 9, generator=gen) < 0.4).float()             # [N, C, L]
    conv = nn.Conv1d(4, 2, **kwargs)
    assert count_sops(conv, x).item() == _brute_force_sops(conv, x)


def test_linear_sops():
    x = torch.tensor([[1.0, 0, 1, 0, 0], [0, 0, 0, 0, 1]])              # 3 spikes
    assert count_sops(nn.Linear(5, 7), x).item() == 3 * 7


@pytest.mark.parametrize("kwargs", [dict(), dict(stride=2, padding=1, groups=2),
                                    dict(padding="same", dilation=2)])
def test_conv_macs_match_output_shape(kwargs):
    conv = nn.Conv2d(4, 6, 3, **kwargs)
    x = torch.randn(2, 4, 7, 6)
    macs = count_macs(conv, x)
    fan_in = 4 // conv.groups * 9
    assert macs == conv(x).numel() * fan_in
    if kwargs.get("groups") == 2:     # output [2, 6, 4, 3] with 2 * 9 inputs each
        assert macs == 2 * 6 * 4 * 3 * 18


def test_real_valued_input_counts_macs_not_sops():
    conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
    x = torch.rand(4, 2, 5, 5) + 0.1                                   # [B, C, H, W], real
    with SpikeMonitor(conv) as mon:
        conv(x)
    s = mon.summary()
    assert s.images == 4                     # no LIF: images = first dim of the input
    assert s.sops_per_image == 0.0
    assert s.macs_per_image == 3 * 5 * 5 * 2 * 9
    torch.testing.assert_close(s.energy_per_image_uJ, s.macs_per_image * 4.6e-6)


def test_layer_called_directly_with_binary_batch():
    fc = nn.Linear(3, 2)
    x = torch.tensor([[1.0, 0, 1], [0, 0, 1], [0, 0, 0]])               # [B=3, 3], 3 spikes
    with SpikeMonitor(fc) as mon:
        fc(x)
    s = mon.summary()
    assert (s.images, s.sops_per_image, s.macs_per_image) == (3, 2.0, 0.0)
    assert s.layers == [] and s.nos_per_image == 0.0


def test_record_output_and_gradients_pass_through():
    lif = LIF(tau=2.0)
    x = (torch.ones(T, 1, 3) * 0.6).requires_grad_()
    with SpikeMonitor(lif) as mon:
        spikes, trace = lif(x, record=True)
    spikes.sum().backward()
    assert x.grad is not None
    s = mon.summary()
    assert s.images == 1
    assert s.layers[0]["name"] == "" and s.layers[0]["spikes"] == 3     # one spike per neuron


def test_hooks_removed_after_exit_and_close():
    model = _hand_model()
    with SpikeMonitor(model) as mon:
        model(_hand_input())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    model(_hand_input())                                               # not counted any more
    assert mon.summary().images == 2
    with pytest.raises(RuntimeError, match="closed"):
        with mon:
            pass
    mon2 = SpikeMonitor(model)
    mon2.close()
    mon2.close()                                                       # idempotent
    assert all(not m._forward_hooks for m in model.modules())


def test_accumulates_across_calls_and_resets():
    model = _hand_model()
    with SpikeMonitor(model) as mon:
        model(_hand_input())
        one = mon.summary()
        model(_hand_input())
        two = mon.summary()
        assert two.images == 2 * one.images
        assert two.layers[0]["spikes"] == 2 * one.layers[0]["spikes"]
        for key in ("nos_per_image", "sops_per_image", "macs_per_image", "energy_per_image_uJ"):
            torch.testing.assert_close(getattr(two, key), getattr(one, key))
        mon.reset()
        assert mon.images == 0
        with pytest.raises(ValueError, match="no images"):
            mon.summary()
        model(_hand_input()[:, :1])                                    # only sample 0
        s = mon.summary()
    assert s.images == 1 and s.layers[0]["spikes"] == 8


def test_explicit_images_override():
    model = _hand_model()
    with SpikeMonitor(model) as mon:
        model(_hand_input())
    torch.testing.assert_close(mon.summary(images=4).nos_per_image, 21 / 4)
    with pytest.raises(ValueError, match="positive int"):
        mon.summary(images=0)


def test_group_by_sums_to_total_and_table():
    torch.manual_seed(0)
    model = nn.Sequential()
    model.add_module("stem", nn.Sequential(TimeDistributed(nn.Linear(6, 8)), LIF()))
    model.add_module("cells", nn.Sequential(
        nn.Sequential(TimeDistributed(nn.Linear(8, 8)), LIF(threshold=0.1),
                      TimeDistributed(nn.Linear(8, 8)), LIF(threshold=0.1)),
        nn.Sequential(TimeDistributed(nn.Linear(8, 5)), LIF(threshold=0.1))))
    with SpikeMonitor(model) as mon:
        model(torch.rand(T, 3, 6) * 3)
    groups = mon.group_by(lambda n: ".".join(n.split(".")[:2]))
    assert list(groups) == ["stem.1", "cells.0", "cells.1"]
    s = mon.summary()
    assert s.nos_per_image > 0
    torch.testing.assert_close(sum(groups.values()), s.nos_per_image)
    cells_only = mon.group_by(lambda n: n.split(".")[1] if n.startswith("cells.") else None)
    assert list(cells_only) == ["0", "1"]
    rows = mon.table()
    assert [r["kind"] for r in rows] == ["Linear", "LIF", "Linear", "LIF", "Linear", "LIF",
                                         "Linear", "LIF"]
    assert all(set(r) == set(rows[0]) for r in rows)
    assert set(s.to_dict()) == {"images", "nos_per_image", "sops_per_image", "macs_per_image",
                                "energy_per_image_uJ", "layers", "synapses", "mac_policy"}
    with pytest.raises(TypeError, match="key must be"):
        mon.group_by("cells.0.")


def test_bad_arguments():
    with pytest.raises(TypeError, match="nn.Module"):
        SpikeMonitor("model")
    with pytest.raises(ValueError, match="nothing to monitor"):
        SpikeMonitor(nn.ReLU())
    with pytest.raises(TypeError, match="inner layer"):
        count_sops(TimeDistributed(nn.Linear(2, 2)), torch.zeros(1, 2))


class _TwiceLIF(nn.Module):
    """Runs the same LIF module twice in one forward (weight sharing)."""

    def __init__(self):
        super().__init__()
        self.lif = LIF(tau=2.0)

    def forward(self, x_seq):
        return self.lif(x_seq) + self.lif(2 * x_seq)


def test_module_called_twice_per_forward_counts_images_once():
    model = _TwiceLIF()
    x = torch.full((T, 3, 2), 0.6)                     # 0.6 -> 1 spike; 1.2 -> T spikes
    with SpikeMonitor(model) as mon:
        model(x)
    s = mon.summary()
    assert s.images == 3
    row = s.layers[0]
    assert row["spikes"] == 3 * 2 * (1 + T)
    torch.testing.assert_close(row["spikes_per_image"], 2 * (1 + T) / 1.0)
    torch.testing.assert_close(row["firing_rate"], (1 + T) / (2 * T))


def _policy_net() -> nn.Sequential:
    """fc1 (real input) -> LIF -> mean over a pair of neurons (real) -> fc2 -> LIF -> fc3.

    The same hand net as ``_hand_model`` for fc1 and the first LIF (spikes of
    neurons 0 and 2 every step in sample 0, neuron 0 in sample 1); fc2 reads the
    average of neuron pairs (0, 1) and (2, 3), a real value in {0, 0.5}; fc3
    reads the spikes of the second LIF.
    """
    class PairMean(nn.Module):
        def forward(self, x_seq):                              # [T, B, 4] -> [T, B, 2]
            return x_seq.reshape(*x_seq.shape[:-1], 2, 2).mean(-1)

    fc1 = nn.Linear(3, 4, bias=False)
    fc2 = nn.Linear(2, 3, bias=False)
    fc3 = nn.Linear(3, 5, bias=False)
    with torch.no_grad():
        fc1.weight.copy_(torch.tensor([[2.0, 0, 0], [0, 2, 0], [0, 0, 2], [0, 0, 0]]))
        fc2.weight.copy_(torch.tensor([[4.0, 0], [0, 4.0], [0, 0]]))
    return nn.Sequential(TimeDistributed(fc1), LIF(tau=2.0), PairMean(),
                         TimeDistributed(fc2), LIF(tau=2.0), TimeDistributed(fc3))


def test_mac_policies_against_hand_counts():
    model = _policy_net()
    with SpikeMonitor(model) as mon:
        model(_hand_input())
    # fc1: real input, [T*B=8, 3] -> 4: 8 * 3 * 4 = 96 MACs -> 48 per image (both policies)
    # LIF 1 spikes: sample 0 neurons {0, 2}, sample 1 neuron {0}, every step
    # fc2 input (pair means): sample 0 [0.5, 0.5], sample 1 [0.5, 0]: real-valued,
    #   dense MACs 8 * 2 * 3 = 48 -> 24 per image; nonzero inputs (2 + 1) * T = 12,
    #   x fan-out 3 = 36 -> 18 per image
    # fc2 currents: sample 0 [2, 2, 0], sample 1 [2, 0, 0] -> LIF 2 fires on them every step:
    #   (2 + 1) * T = 12 spikes x fan-out 5 = 60 SOPs of fc3 -> 30 per image
    nonbinary = mon.summary()
    first = mon.summary(mac_policy="first_layer")
    assert nonbinary.mac_policy == "nonbinary" and first.mac_policy == "first_layer"
    rows_nb = {r["name"]: r for r in nonbinary.synapses}
    rows_fl = {r["name"]: r for r in first.synapses}
    pair = lambda r: (r["sops_per_image"], r["macs_per_image"])
    assert pair(rows_nb["0.module"]) == (0.0, 48.0)
    assert pair(rows_nb["3.module"]) == (0.0, 24.0)
    assert pair(rows_nb["5.module"]) == (30.0, 0.0)
    assert pair(rows_fl["0.module"]) == (0.0, 48.0)
    assert pair(rows_fl["3.module"]) == (18.0, 0.0)     # charged as ACs by nonzero inputs
    assert pair(rows_fl["5.module"]) == (30.0, 0.0)
    assert (nonbinary.sops_per_image, nonbinary.macs_per_image) == (30.0, 72.0)
    assert (first.sops_per_image, first.macs_per_image) == (48.0, 48.0)
    torch.testing.assert_close(nonbinary.energy_per_image_uJ, (30 * 0.9 + 72 * 4.6) * 1e-6)
    torch.testing.assert_close(first.energy_per_image_uJ, (48 * 0.9 + 48 * 4.6) * 1e-6)
    # the head share each chapter can print: fc2 + fc3
    for s in (nonbinary, first):
        shares = {r["name"]: r["energy_share"] for r in s.synapses}
        torch.testing.assert_close(sum(shares.values()), 1.0)
        head = sum(r["energy_per_image_uJ"] for r in s.synapses if r["name"] != "0.module")
        torch.testing.assert_close(shares["3.module"] + shares["5.module"],
                                   head / s.energy_per_image_uJ)
    torch.testing.assert_close(rows_nb["3.module"]["energy_share"], 24 * 4.6 / (27 + 72 * 4.6))
    # the constructor sets the default; table() follows it and has the share column
    with SpikeMonitor(model, mac_policy="first_layer") as mon2:
        model(_hand_input())
    assert mon2.summary().to_dict() == first.to_dict()
    assert [r["energy_share"] is None for r in mon2.table()] == [False, True, False, True, False]
    with pytest.raises(ValueError, match="mac_policy must be one of"):
        SpikeMonitor(model, mac_policy="first")
    with pytest.raises(ValueError, match="mac_policy must be one of"):
        mon2.summary(mac_policy="all")


def test_first_layer_is_first_per_call_and_binary_first_layer_pays_sops():
    model = _policy_net()
    with SpikeMonitor(model, mac_policy="first_layer") as mon:
        model(_hand_input())
        model(_hand_input())                          # each call has its own first layer
    s = mon.summary()
    assert s.images == 4
    assert [r["macs_per_image"] for r in s.synapses] == [48.0, 0.0, 0.0]
    # a first layer fed binary input (rate-coded spikes) pays SOPs under both policies
    fc = nn.Linear(3, 2)
    x = torch.tensor([[1.0, 0, 1], [0, 0, 1], [0, 0, 0]])
    with SpikeMonitor(fc, mac_policy="first_layer") as mon:
        fc(x)
    assert (mon.summary().sops_per_image, mon.summary().macs_per_image) == (2.0, 0.0)


class _FeedbackLoop(nn.Module):
    """A LIF stepped one step at a time through forward([1, B, ...]), as in feedback cells."""

    def __init__(self):
        super().__init__()
        self.lif = LIF(tau=2.0)

    def forward(self, x_seq):
        return torch.cat([self.lif(x_seq[t:t + 1]) for t in range(x_seq.shape[0])])


def test_time_steps_counts_steps_per_forward_call():
    model = _FeedbackLoop()
    with SpikeMonitor(model) as mon:
        model(torch.ones(5, 2, 3))
        model(torch.ones(5, 2, 3))
    row = mon.summary().layers[0]
    assert row["time_steps"] == 5                     # not 1 (the last call's length)
    assert row["neurons"] == 3 and row["firing_rate"] == row["spikes"] / (3 * 5 * 2 * 2)
    lif = LIF(tau=2.0)
    with SpikeMonitor(lif) as mon:                     # whole-sequence calls
        lif(torch.ones(T, 2, 3))
        lif(torch.ones(T, 1, 3))
    assert mon.summary().layers[0]["time_steps"] == T
