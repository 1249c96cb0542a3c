"""The fused LIF kernel is bit-identical to its pre-optimisation version (tests/lif_reference.py).

Speed work on snnlab.neurons._LIFSequence must not move a single bit: the book's
stored outputs (spikes, losses, accuracies) depend on them. Every case runs the
current kernel and the oracle on the same inputs and output gradients, and demands
torch.equal on spikes, membranes, final state and every input gradient, in float32
and float64, over shapes whose sizes are not multiples of the vector width (so the
scalar tail of each CPU kernel is exercised too).
"""
import itertools

import pytest
import torch

from lif_reference import ReferenceLIFSequence
from snnlab.neurons import _LIFSequence
from snnlab.surrogates import ATan, Dspike, FastSigmoid, Sigmoid, Triangle

SHAPES = [(4, 64, 1024), (5, 3, 7, 5, 5), (1, 2, 3), (8, 33, 17)]
DTYPES = [torch.float32, torch.float64]


def _inputs(shape, dtype, channels, seed):
    """Currents around the threshold (some exactly on it), v0, decay, threshold, grads."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=dtype) * 1.6 - 0.2
    x.view(-1)[::11] = 0.8                      # exactly the threshold below: h == theta
    v0 = torch.rand(shape[1:], generator=g, dtype=dtype) * 0.5
    param_shape = (channels,) + (1,) * (len(shape) - 3) if channels else ()
    decay = torch.rand(param_shape, generator=g, dtype=dtype) * 0.6 + 0.3
    threshold = torch.full(param_shape, 0.8, dtype=dtype)
    grads = [torch.randn(shape, generator=g, dtype=dtype),          # dL/dspikes
             torch.randn(shape, generator=g, dtype=dtype),          # dL/dh (record)
             torch.randn(shape[1:], generator=g, dtype=dtype)]      # dL/dv_final
    return x, v0, decay, threshold, grads


def _run(function, inputs, surrogate, reset, detach, record, learn, use_grads):
    """Forward + backward of one kernel; returns outputs and input gradients."""
    x, v0, decay, threshold, grads = inputs
    leaves = [t.clone().requires_grad_(need)
              for t, need in zip((x, v0, decay, threshold), (True, True, learn, learn))]
    spikes, h_seq, v_final = function.apply(*leaves, surrogate, reset, detach, record)
    outputs = [spikes.detach().clone(), h_seq.detach().clone(), v_final.detach().clone()]
    terms = [(spikes * grads[0]).sum()]
    if use_grads:                                # gradients through the membrane outputs too
        terms += [(h_seq * grads[1]).sum(), (v_final * grads[2]).sum()]
    torch.stack(terms).sum().backward()
    return outputs + [leaf.grad for leaf in leaves]


def _assert_identical(ours, oracle):
    names = ["spikes", "membrane", "v_final", "grad x", "grad v0", "grad decay", "grad threshold"]
    for name, a, b in zip(names, ours, oracle):
        assert (a is None) == (b is None), name
        if a is not None:
            assert a.dtype == b.dtype and torch.equal(a, b), f"{name} differs"


@pytest.mark.parametrize("shape,dtype", list(itertools.product(SHAPES, DTYPES)))
@pytest.mark.parametrize("reset", ["hard", "subtract"])
def test_common_case_is_bit_identical(shape, dtype, reset):
    # the networks' case: detached reset, fixed tau and threshold, spikes only
    inputs = _inputs(shape, dtype, None, seed=len(shape))
    ours = _run(_LIFSequence, inputs, ATan(2.0), reset, True, False, False, False)
    oracle = _run(ReferenceLIFSequence, inputs, ATan(2.0), reset, True, False, False, False)
    _assert_identical(ours, oracle)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("reset,detach,record,learn,channels",
                         list(itertools.product(["hard", "subtract"], [True, False], [True, False],
                                                [True, False], [None, 7])))
def test_every_option_is_bit_identical(dtype, reset, detach, record, learn, channels):
    inputs = _inputs((5, 3, 7, 5, 5), dtype, channels, seed=1)
    args = (Sigmoid(4.0), reset, detach, record, learn, record)
    _assert_identical(_run(_LIFSequence, inputs, *args), _run(ReferenceLIFSequence, inputs, *args))


@pytest.mark.parametrize("surrogate", [ATan(2.0), Sigmoid(25.0), Triangle(1.0), FastSigmoid(25.0),
                                       Dspike(3.0)], ids=lambda s: s.name)
def test_every_surrogate_is_bit_identical(surrogate):
    inputs = _inputs((4, 8, 33), torch.float32, None, seed=2)
    args = (surrogate, "hard", True, False, False, False)
    _assert_identical(_run(_LIFSequence, inputs, *args), _run(ReferenceLIFSequence, inputs, *args))


def test_spiking_network_step_is_bit_identical(monkeypatch):
    # a whole training step of the baseline CNN: loss and every weight gradient
    import snnlab.neurons as neurons
    from snnlab.models import SpikingCNN

    def step(function):
        monkeypatch.setattr(neurons, "_LIFSequence", function)
        torch.manual_seed(0)
        model = SpikingCNN(1, 10, widths=(8, 16), T=4, image_size=8)
        x = torch.rand(16, 1, 8, 8, generator=torch.Generator().manual_seed(3))
        loss = torch.nn.functional.cross_entropy(model(x), torch.arange(16) % 10)
        loss.backward()
        return [loss.detach()] + [p.grad for p in model.parameters()]

    for a, b in zip(step(_LIFSequence), step(ReferenceLIFSequence)):
        assert torch.equal(a, b)
