"""LIF neurons: golden traces, fused vs single-step, snnTorch equivalence, errors."""
import itertools
import math

import pytest
import torch
from torch.testing import assert_close

from snnlab.neurons import LIF, lif_step
from snnlab.surrogates import ATan, Dspike, FastSigmoid, Sigmoid


def test_golden_trace_hard_reset():
    # tau = 2 -> decay 0.5; constant input 0.6, threshold 1, hard reset
    # h: 0.6, 0.9, 1.05 (fires, v -> 0), 0.6, 0.9, 1.05 (fires)
    lif = LIF(tau=2.0, threshold=1.0, reset="hard")
    x = torch.full((6, 1, 1), 0.6, dtype=torch.float64)
    spikes, trace = lif(x, record=True)
    assert spikes.flatten().tolist() == [0, 0, 1, 0, 0, 1]
    assert_close(trace.v.flatten(), torch.tensor([0.6, 0.9, 1.05, 0.6, 0.9, 1.05], dtype=torch.float64))


def test_golden_trace_subtract_reset():
    # tau = 2, input 0.8: h = 0.8, 1.2 (fire, v = 0.2), 0.9, 1.25 (fire, v = 0.25), 0.925
    lif = LIF(tau=2.0, threshold=1.0, reset="subtract")
    x = torch.full((5, 1, 1), 0.8, dtype=torch.float64)
    spikes, trace = lif(x, record=True)
    assert spikes.flatten().tolist() == [0, 1, 0, 1, 0]
    assert_close(trace.v.flatten(), torch.tensor([0.8, 1.2, 0.9, 1.25, 0.925], dtype=torch.float64))


def test_decay_input_scales_the_drive():
    # SNASNet's neuron: tau = 4/3 keeps 25 % and scales the input by 0.75
    lif = LIF(tau=4 / 3, threshold=1.0, decay_input=True)
    x = torch.full((3, 1, 1), 1.0, dtype=torch.float64)
    _, trace = lif(x, record=True)
    assert_close(trace.v.flatten(), torch.tensor([0.75, 0.9375, 0.984375], dtype=torch.float64))


def _loop_reference(lif, x_seq):
    """The same neuron as a Python loop over lif_step (plain autograd)."""
    v = torch.zeros_like(x_seq[0])
    spikes, membrane = [], []
    decay = lif._broadcast(lif.decay, x_seq[0])
    threshold = lif._broadcast(lif.threshold, x_seq[0])
    for x_t in x_seq:
        s, h, v = lif_step(x_t, v, decay, threshold, lif.surrogate, lif.reset,
                           lif.detach_reset, lif.decay_input)
        spikes.append(s)
        membrane.append(h)
    return torch.stack(spikes), torch.stack(membrane)


@pytest.mark.parametrize("reset,detach,decay_input,learn,channels",
                         list(itertools.product(["hard", "subtract"], [True, False], [False, True],
                                                [False, True], [None, 3])))
def test_fused_equals_single_step_loop(reset, detach, decay_input, learn, channels):
    torch.manual_seed(0)
    kwargs = dict(tau=1.7, threshold=0.8, reset=reset, detach_reset=detach, decay_input=decay_input,
                  learn_tau=learn, learn_threshold=learn, channels=channels,
                  surrogate=Sigmoid(slope=3.0))
    fused, looped = LIF(**kwargs).double(), LIF(**kwargs).double()
    x = (torch.randn(7, 2, 3, 4, dtype=torch.float64) * 1.5 + 0.5)
    w_s, w_v = torch.randn_like(x), torch.randn_like(x)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()

    s1, trace = fused(x1, record=True)
    s2, h2 = _loop_reference(looped, x2)
    assert_close(s1, s2)
    assert_close(trace.v, h2)

    ((s1 * w_s).sum() + (trace.v * w_v).sum()).backward()
    ((s2 * w_s).sum() + (h2 * w_v).sum()).backward()
    assert_close(x1.grad, x2.grad)
    for p1, p2 in zip(fused.parameters(), looped.parameters()):
        assert_close(p1.grad, p2.grad)


@pytest.mark.parametrize("reset,detach,learn", [("hard", True, False), ("subtract", True, True),
                                                ("hard", False, True), ("subtract", False, False)])
def test_sequence_split_in_chunks_with_v0_equals_one_call(reset, detach, learn):
    # a cell with feedback edges runs the neuron one step at a time, carrying v_final
    torch.manual_seed(4)
    kwargs = dict(tau=1.5, threshold=0.7, reset=reset, detach_reset=detach, learn_tau=learn,
                  learn_threshold=learn, surrogate="triangle")
    whole, chunked = LIF(**kwargs).double(), LIF(**kwargs).double()
    x = torch.randn(6, 3, 5, dtype=torch.float64) + 0.5
    w = torch.randn_like(x)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    s1 = whole(x1)
    v, parts = None, []
    for t in range(6):
        s_t, trace = chunked(x2[t:t + 1], record=True, v0=v)
        v = trace.v_final
        parts.append(s_t)
    s2 = torch.cat(parts)
    assert_close(s1, s2)
    (s1 * w).sum().backward()
    (s2 * w).sum().backward()
    assert_close(x1.grad, x2.grad)
    for p1, p2 in zip(whole.parameters(), chunked.parameters()):
        assert_close(p1.grad, p2.grad)


def test_v0_shape_is_checked():
    with pytest.raises(ValueError, match="v0 must have the shape"):
        LIF()(torch.rand(3, 2, 4), v0=torch.zeros(2, 5))


def test_multistep_equals_step_api():
    torch.manual_seed(1)
    lif = LIF(tau=3.0, threshold=0.5, surrogate="dspike")
    x = torch.rand(6, 4, 5)
    v, spikes = None, []
    for x_t in x:
        s, v = lif.step(x_t, v)
        spikes.append(s)
    assert_close(lif(x), torch.stack(spikes))


snntorch = pytest.importorskip("snntorch")
from snntorch import surrogate as snn_surrogate  # noqa: E402


@pytest.mark.parametrize("beta,threshold,ours,theirs", [
    (0.5, 1.0, ATan(alpha=2.0), snn_surrogate.atan(alpha=2.0)),
    (0.9, 0.5, Sigmoid(slope=5.0), snn_surrogate.sigmoid(slope=5.0)),
    (0.25, 0.7, FastSigmoid(slope=25.0), snn_surrogate.fast_sigmoid(slope=25.0)),
])
def test_equals_snntorch_leaky_zero_reset(beta, threshold, ours, theirs):
    torch.manual_seed(2)
    x = torch.randn(8, 3, 10) * 0.8 + 0.4
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    w_s, w_v = torch.randn_like(x), torch.randn_like(x)

    lif = LIF(tau=1 / (1 - beta), threshold=threshold, reset="hard", surrogate=ours)
    s1, trace = lif(x1, record=True)

    leaky = snntorch.Leaky(beta=beta, threshold=threshold, reset_mechanism="zero", spike_grad=theirs)
    mem = leaky.reset_mem()
    spk_list, mem_list = [], []
    for x_t in x2:
        spk, mem = leaky(x_t, mem)
        spk_list.append(spk)
        mem_list.append(mem)
    s2, v2 = torch.stack(spk_list), torch.stack(mem_list)

    assert_close(s1, s2)
    assert_close(trace.v, v2, rtol=1e-5, atol=1e-6)
    ((s1 * w_s).sum() + (trace.v * w_v).sum()).backward()
    ((s2 * w_s).sum() + (v2 * w_v).sum()).backward()
    assert_close(x1.grad, x2.grad, rtol=1e-5, atol=1e-6)


def test_equals_snntorch_subtract_reset_without_leak():
    # snnTorch subtracts the threshold after the decay, we before it: equal for beta = 1
    torch.manual_seed(3)
    x = torch.rand(8, 2, 6)
    lif = LIF(tau=math.inf, threshold=1.0, reset="subtract", surrogate=ATan(2.0))
    leaky = snntorch.Leaky(beta=1.0, threshold=1.0, reset_mechanism="subtract",
                           spike_grad=snn_surrogate.atan(alpha=2.0))
    mem = leaky.reset_mem()
    outs = []
    for x_t in x:
        spk, mem = leaky(x_t, mem)
        outs.append(spk)
    assert_close(lif(x), torch.stack(outs))


def test_no_state_between_calls():
    lif = LIF(tau=2.0)
    x = torch.rand(5, 2, 3) * 2
    assert_close(lif(x), lif(x))
    assert not any(b.shape == x.shape[1:] for b in lif.buffers())


def test_dtype_and_device_follow_input():
    lif = LIF()
    assert lif(torch.rand(3, 2, 4, dtype=torch.float64)).dtype == torch.float64
    spikes, trace = lif(torch.rand(3, 2, 4).bfloat16(), record=True)
    assert spikes.dtype == torch.bfloat16                 # spikes in the input's dtype
    assert trace.v.dtype == trace.v_final.dtype == torch.float32    # the membrane in fp32


@pytest.mark.parametrize("reset", ["hard", "subtract"])
def test_membrane_runs_in_float32_under_autocast(reset):
    # bf16 currents, as a conv under autocast produces them: the recurrence must not
    # round in bf16 (it flipped spikes and biased tau/threshold gradients by 4-7 %)
    torch.manual_seed(0)
    x = (torch.randn(32, 8, 64) * 0.6 + 0.45).bfloat16()
    weights = (torch.randint(-4, 5, (32, 8, 64)) / 4).bfloat16()       # exact in bf16

    def run(current, autocast):
        torch.manual_seed(1)
        lif = LIF(tau=4 / 3, threshold=1.0, reset=reset, learn_tau=True, learn_threshold=True,
                  channels=64)
        current = current.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            spikes = lif(current)
            loss = (spikes * weights.to(spikes.dtype)).sum()
        loss.backward()
        return spikes, lif.tau_param.grad, lif.threshold.grad, current.grad

    s16, tau16, th16, x16 = run(x, autocast=True)
    s32, tau32, th32, x32 = run(x.float(), autocast=False)
    assert s16.dtype == torch.bfloat16
    assert torch.equal(s16.float(), s32)                                # not one spike flips
    assert_close(tau16, tau32, rtol=1e-5, atol=1e-6)
    assert_close(th16, th32, rtol=1e-5, atol=1e-6)
    assert_close(x16.float(), x32, rtol=1e-2, atol=1e-2)               # rounded to bf16 once
    # the same holds step by step (feedback cells)
    lif = LIF(tau=4 / 3, reset=reset)
    v, steps = None, []
    for t in range(x.shape[0]):
        s, v = lif.step(x[t], v)
        steps.append(s)
    assert v.dtype == torch.float32 and torch.equal(torch.stack(steps).float(), lif(x.float()))


def test_learnable_tau_stays_above_one_and_is_saved():
    lif = LIF(tau=2.0, learn_tau=True, learn_threshold=True, channels=4)
    assert {n for n, _ in lif.named_parameters()} == {"tau_param", "threshold"}
    with torch.no_grad():
        lif.tau_param.fill_(-50.0)           # an optimiser pushing tau down hard
    assert bool((lif.tau >= 1).all())
    assert set(lif.state_dict()) == {"tau_param", "threshold"}
    assert_close(LIF(tau=4.0, channels=4).tau, torch.full((4,), 4.0))


def test_per_channel_time_constants_act_per_channel():
    lif = LIF(tau=2.0, channels=2)
    with torch.no_grad():
        lif.decay_value.copy_(torch.tensor([0.0, 0.9]))
    x = torch.full((4, 1, 2, 1, 1), 0.4)
    spikes = lif(x)
    assert spikes[:, 0, 0].sum() == 0        # no memory: never reaches 1
    assert spikes[:, 0, 1].sum() >= 1        # long memory: integrates to threshold


@pytest.mark.parametrize("bad,err,match", [
    (torch.rand(5), ValueError, r"\[T, B, \.\.\.\]"),
    (torch.rand(0, 2, 3), ValueError, "T = 0"),
    (torch.ones(3, 2, dtype=torch.int64), TypeError, "floating point"),
    ([1.0, 2.0], TypeError, "torch.Tensor"),
])
def test_bad_input_errors(bad, err, match):
    with pytest.raises(err, match=match):
        LIF()(bad)


def test_bad_arguments_error():
    with pytest.raises(ValueError, match="unknown reset"):
        LIF(reset="zero")
    with pytest.raises(ValueError, match="unknown surrogate"):
        LIF(surrogate="relu")
    with pytest.raises(ValueError, match="tau must be >= 1"):
        LIF(tau=0.5)
    with pytest.raises(ValueError, match="channels=3"):
        LIF(channels=3)(torch.rand(2, 1, 4, 5))


def test_dspike_lif_gradient_vanishes_outside_window():
    lif = LIF(tau=1.25, threshold=0.5, surrogate=Dspike(b=3.0))
    x = torch.full((1, 1, 1), 5.0, requires_grad=True)   # h - theta = 4.5, outside |x| < 1/2
    lif(x).sum().backward()
    assert x.grad.item() == 0.0


@pytest.mark.parametrize("reset", ["hard", "subtract"])
def test_fast_path_without_trace_has_the_same_gradient(reset):
    # record=False lets backward reuse the membrane buffer: check it against the reference loop
    torch.manual_seed(5)
    lif = LIF(tau=2.5, threshold=0.9, reset=reset).double()
    x = torch.randn(6, 4, 7, dtype=torch.float64) + 0.6
    w = torch.randn_like(x)
    x1, x2 = x.clone().requires_grad_(), x.clone().requires_grad_()
    (lif(x1) * w).sum().backward()
    s2, _ = _loop_reference(lif, x2)
    (s2 * w).sum().backward()
    assert_close(x1.grad, x2.grad)


def test_second_backward_on_the_fast_path_errors_clearly():
    x = torch.rand(3, 2, 4, requires_grad=True)
    loss = LIF()(x * 2).sum()
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="ran twice"):
        loss.backward()
