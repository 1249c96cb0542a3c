"""The op registry (snnlab.ops): built-in SNASNet ops, stepping, registration and errors."""
import pytest
import torch
from torch import nn

from snnlab.layers import TimeDistributed
from snnlab.neurons import LIF
from snnlab.ops import (OPS, SNASNET_OPS, SpikeConvBN, build_op, check_op_names, check_steppable,
                        op_step, register_op, step_neuron, unregister_op)

NEURON = dict(tau=4.0 / 3.0, threshold=1.0, decay_input=True)


@pytest.fixture
def registry():
    """Give the test the registry and restore it afterwards (user ops removed)."""
    before = dict(OPS)
    yield OPS
    OPS.clear()
    OPS.update(before)


def _x_seq(T=4, B=3, C=2, H=5, W=5, seed=0):
    return 2.0 * torch.randn(T, B, C, H, W, generator=torch.Generator().manual_seed(seed))


def test_snasnet_ops_are_registered_in_official_code_order():
    assert SNASNET_OPS == ("none", "skip_connect", "spike_conv_1x1", "spike_conv_3x3",
                           "avg_pool_3x3")
    assert set(SNASNET_OPS) <= set(OPS)
    assert check_op_names(list(SNASNET_OPS)) == SNASNET_OPS


@pytest.mark.parametrize("name", SNASNET_OPS)
@pytest.mark.parametrize("stride", [1, 2])
def test_builtin_op_shapes(name, stride):
    if name == "skip_connect" and stride == 2:
        with pytest.raises(ValueError, match="stride 1"):
            build_op(name, 2, stride, NEURON)
        return
    op = build_op(name, 2, stride, NEURON)
    y = op(_x_seq())
    assert y.shape == (4, 3, 2, 3 if stride == 2 else 5, 3 if stride == 2 else 5)


def test_none_is_zeros_and_skip_is_identity():
    x = _x_seq()
    assert torch.equal(build_op("none", 2)(x), torch.zeros_like(x))
    assert build_op("skip_connect", 2)(x) is x


def test_spike_conv_is_lif_then_conv_then_bn():
    op = build_op("spike_conv_3x3", 2, 1, NEURON).eval()
    x = _x_seq()
    spikes = op.lif(x)
    T, B = x.shape[:2]
    ref = op.bn.module(op.conv.module(spikes.reshape(T * B, 2, 5, 5))).reshape(T, B, 2, 5, 5)
    torch.testing.assert_close(op(x), ref, rtol=0, atol=0)
    assert op.conv.module.bias is None and op.conv.module.kernel_size == (3, 3)
    assert op.lif.threshold.item() == 1.0 and op.lif.decay_input
    assert build_op("spike_conv_1x1", 2).conv.module.kernel_size == (1, 1)


def test_avg_pool_counts_padding_like_torch_default():
    x = torch.ones(1, 1, 1, 3, 3)
    y = build_op("avg_pool_3x3", 1)(x)
    assert y[0, 0, 0, 0, 0].item() == pytest.approx(4 / 9)      # corner: 4 ones, 9 cells


@pytest.mark.parametrize("name", SNASNET_OPS)
def test_step_by_step_equals_multi_step_in_eval_mode(name):
    op = build_op(name, 2, 1, NEURON).eval()
    x = _x_seq()
    state = {}
    stepped = torch.stack([op_step(op, x[t], state) for t in range(x.shape[0])])
    torch.testing.assert_close(stepped, op(x), rtol=1e-6, atol=1e-6)
    if "conv" in name:
        assert set(state) == {"lif"} and state["lif"].shape == x.shape[1:]
        assert op.lif(x).sum() > 0          # the neuron really fired


def test_steps_are_seen_by_forward_hooks():
    op = build_op("spike_conv_3x3", 2, 1, NEURON)
    seen = []
    op.lif.register_forward_hook(lambda m, args, out: seen.append(tuple(out[0].shape)))
    state, x = {}, _x_seq(T=3)
    for t in range(3):
        op_step(op, x[t], state)
    assert seen == [(1, 3, 2, 5, 5)] * 3


def test_step_neuron_carries_the_membrane():
    lif, x = LIF(**NEURON), _x_seq(T=5)
    state = {}
    stepped = torch.stack([step_neuron(lif, x[t], state, "v") for t in range(5)])
    spikes, trace = lif(x, record=True)
    torch.testing.assert_close(stepped, spikes)
    torch.testing.assert_close(state["v"], trace.v_final)


def test_stateless_user_op_gets_a_default_step():
    op = TimeDistributed(nn.MaxPool2d(3, 1, 1))                  # no step method, no LIF
    x = _x_seq()
    stepped = torch.stack([op_step(op, x[t], {}) for t in range(4)])
    torch.testing.assert_close(stepped, op(x))
    check_steppable(op)


def test_spiking_user_op_without_step_is_refused_for_stepping():
    op = nn.Sequential(LIF(), TimeDistributed(nn.Conv2d(2, 2, 1)))
    with pytest.raises(TypeError, match="defines no step"):
        op_step(op, torch.zeros(1, 2, 3, 3), {})
    with pytest.raises(TypeError, match="step_neuron"):
        check_steppable(op, "my op")


def test_register_and_unregister_a_user_op(registry):
    @register_op("user_conv_3x3_half")
    def factory(C, stride, neuron):
        return SpikeConvBN(C, 3, stride, {**neuron, "threshold": 0.5})

    assert OPS["user_conv_3x3_half"] is factory
    op = build_op("user_conv_3x3_half", 4, 1, NEURON)
    assert op.lif.threshold.item() == 0.5 and op.lif.decay_input
    with pytest.raises(ValueError, match="already registered"):
        register_op("user_conv_3x3_half")(factory)
    register_op("user_conv_3x3_half", replace=True)(factory)      # re-running a notebook cell
    unregister_op("user_conv_3x3_half")
    assert "user_conv_3x3_half" not in OPS


def test_builtins_are_protected(registry):
    with pytest.raises(ValueError, match="built-in"):
        register_op("skip_connect", replace=True)
    with pytest.raises(ValueError, match="built-in"):
        unregister_op("none")
    with pytest.raises(KeyError, match="registered"):
        unregister_op("no_such_op")


def test_errors_name_the_registered_ops(registry):
    # other modules (e.g. snnlab.darts_ops) may have registered more ops: check ours are named
    with pytest.raises(ValueError, match=r"registered ops are \['avg_pool_3x3', .*'none'.*'spike_conv_3x3'"):
        build_op("conv_7x7", 4)
    with pytest.raises(ValueError, match="unknown op"):
        check_op_names(("none", "conv_7x7"))
    with pytest.raises(ValueError, match="repeat"):
        check_op_names(("none", "none"))
    with pytest.raises(TypeError, match="single str"):
        check_op_names("none")
    with pytest.raises(ValueError, match="C must be a positive int"):
        build_op("none", 0)
    with pytest.raises(TypeError, match="neuron must be a dict"):
        build_op("spike_conv_1x1", 2, 1, neuron=LIF())
    with pytest.raises(ValueError, match="non-empty"):
        register_op("")
    register_op("not_a_module")(lambda C, stride, neuron: "oops")
    with pytest.raises(TypeError, match="must return an nn.Module"):
        build_op("not_a_module", 2)
    with pytest.raises(ValueError, match=r"\[T, B, C, H, W\]"):
        build_op("spike_conv_3x3", 2)(torch.zeros(3, 2, 5, 5))
