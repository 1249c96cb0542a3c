"""snnlab.compiled: the straight-through LIF equals the eager LIF; torch.compile keeps it so."""
import shutil

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from snnlab.compiled import CompiledLIF, compile_lifs, lif_sequence
from snnlab.layers import SpikingConvBlock
from snnlab.neurons import LIF
from snnlab.surrogates import ATan, Dspike, Sigmoid

SETTINGS = [
    dict(reset="hard", detach_reset=True),
    dict(reset="hard", detach_reset=False),
    dict(reset="subtract", detach_reset=True, surrogate=Sigmoid(4.0)),
    dict(reset="hard", decay_input=True, tau=4 / 3),                    # SNASNet's neuron
    dict(reset="hard", surrogate=Dspike(3.0), threshold=0.5, tau=1.25),  # SpikeDHS's
    dict(reset="hard", learn_tau=True, learn_threshold=True, channels=3, tau=3.0),
]


def _input(shape=(6, 4, 3, 5), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(shape, generator=g, dtype=dtype) * 1.6).requires_grad_()


def _spikes_and_grads(lif, x, forward):
    weights = torch.linspace(-1, 2, x[0].numel(), dtype=x.dtype).reshape(x.shape[1:])
    spikes = forward(x)
    loss = (spikes * weights).sum()           # unequal weights: every gradient path counts
    params = [p for p in lif.parameters()]
    grads = torch.autograd.grad(loss, [x] + params)
    return spikes.detach(), grads


def _straight_through(lif):
    """The uncompiled kernel of CompiledLIF, called as CompiledLIF.forward calls it."""
    def forward(x_seq):
        decay = lif._broadcast(lif.decay, x_seq[0])
        threshold = lif._broadcast(lif.threshold, x_seq[0])
        drive = (1 - decay) * x_seq if lif.decay_input else x_seq
        return lif_sequence(drive, decay, threshold, lif.surrogate, lif.reset == "hard",
                            lif.detach_reset)
    return forward


@pytest.mark.parametrize("settings", SETTINGS)
def test_straight_through_kernel_equals_eager_lif(settings):
    lif = LIF(**{"tau": 2.0, "threshold": 1.0, **settings}).double()
    x = _input()
    eager_spikes, eager_grads = _spikes_and_grads(lif, x, lif)
    st_spikes, st_grads = _spikes_and_grads(lif, x, _straight_through(lif))
    assert eager_spikes.sum() > 0
    assert torch.equal(st_spikes, eager_spikes)
    for a, b in zip(st_grads, eager_grads):
        assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_spike_forward_is_exactly_heaviside():
    lif = LIF(tau=2.0, threshold=1.0)
    x = _input(dtype=torch.float32)
    spikes = _straight_through(lif)(x)
    assert set(spikes.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(spikes, lif(x))


def test_from_lif_keeps_settings_and_state():
    lif = LIF(tau=3.0, threshold=0.7, reset="subtract", surrogate=ATan(3.0), decay_input=True,
              learn_tau=True, learn_threshold=True, channels=2)
    with torch.no_grad():
        lif.tau_param.add_(0.3)
    out = CompiledLIF.from_lif(lif)
    assert isinstance(out, LIF) and type(out) is CompiledLIF
    assert out.extra_repr() == lif.extra_repr()
    for (name, a), (_, b) in zip(lif.state_dict().items(), out.state_dict().items()):
        assert torch.equal(a, b), name


def test_compile_lifs_swaps_every_lif_in_a_model():
    model = nn.Sequential(SpikingConvBlock(1, 4, tau=2.0), SpikingConvBlock(4, 4, tau=3.0))
    same = compile_lifs(model)
    assert same is model
    lifs = [m for m in model.modules() if isinstance(m, LIF)]
    assert len(lifs) == 2 and all(type(m) is CompiledLIF for m in lifs)
    assert_close(float(lifs[1].tau), 3.0)


def test_record_and_v0_fall_back_to_eager():
    lif = CompiledLIF(tau=2.0)
    x = torch.rand(3, 2, 4)
    spikes, trace = lif(x, record=True)        # no compilation on this path
    assert trace.v.shape == x.shape and spikes.shape == x.shape


def test_compile_lifs_rejects_a_non_lif():
    with pytest.raises(TypeError, match="snnlab.neurons.LIF"):
        CompiledLIF.from_lif(nn.ReLU())


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="torch.compile (Inductor) needs a C compiler on CPU; none on PATH")
def test_compiled_lif_equals_eager():
    # slow: the first compilation takes minutes on a loaded 2-core machine
    lif = LIF(tau=2.0, threshold=1.0, decay_input=True)
    compiled = CompiledLIF.from_lif(lif)
    x = _input(dtype=torch.float32)
    eager_spikes, eager_grads = _spikes_and_grads(lif, x, lif)
    spikes, grads = _spikes_and_grads(compiled, x, compiled)
    assert eager_spikes.sum() > 0
    assert torch.equal(spikes, eager_spikes)
    for a, b in zip(grads, eager_grads):
        assert_close(a, b, rtol=1e-5, atol=1e-6)
