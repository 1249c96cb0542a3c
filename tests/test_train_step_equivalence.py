"""benchmarks/train_step.py compares the *same* network in three libraries: check it.

On one batch, in float64 (so that no spike flips on rounding), every build gives
the same spikes per neuron layer, the same loss and the same weight gradients as
the snnlab model; dropout is off (each library draws its masks its own way) and the
batch-norm running statistics are those of the batch, so that eval mode spikes. In train mode the snnTorch-idiom build (time loop around the
whole network) is left out: its batch norm sees one step at a time, so it
normalises with other statistics by design (benchmark docstring); in eval mode
(running statistics, no dropout) it must agree too.
"""
import importlib.util
import sys
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.testing import assert_close

pytest.importorskip("snntorch")

_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "train_step.py"


@pytest.fixture(scope="module")
def ts():
    """The benchmark script as a module (it lives outside the package)."""
    spec = importlib.util.spec_from_file_location("train_step_benchmark", _PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _neuron_types(ts):
    types = [ts.LIF, ts.LeakyStep]
    if ts.sj_neuron is not None:
        types.append(ts.sj_neuron.LIFNode)
    return tuple(types)


def _run(ts, model, x, y):
    """Loss, total spikes of each neuron layer (module order) and the weight gradients."""
    neurons = [m for m in model.modules() if isinstance(m, _neuron_types(ts))]
    counts = [0.0] * len(neurons)

    def hook(index):
        def count(module, inputs, output):
            counts[index] += float(output.detach().sum())
        return count

    handles = [m.register_forward_hook(hook(i)) for i, m in enumerate(neurons)]
    try:
        model.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
    finally:
        for h in handles:
            h.remove()
        if ts.sj_neuron is not None:
            ts.sj_functional.reset_net(model)
    weights = [m.weight.grad.clone() for m in model.modules()
               if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))]
    return loss.detach(), counts, weights


def _batch_norms(model):
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


def _calibrate_batch_norm(models, x):
    """Running statistics = this batch's (pooled over T*B), the same in every build.

    With the initial statistics (mean 0, variance 1) the deeper layers of an
    untrained network stay silent in eval mode and the comparison would say little.
    """
    base = models["snnlab"]
    for bn in _batch_norms(base):
        bn.momentum = None                       # cumulative average: one batch, its statistics
    with torch.no_grad():
        base.train()(x)
    for model in models.values():
        for bn, ref in zip(_batch_norms(model), _batch_norms(base)):
            bn.running_mean.copy_(ref.running_mean)
            bn.running_var.copy_(ref.running_var)


def _set_mode(ts, model, train):
    """Train or eval mode; dropout always off (each build draws its masks differently)."""
    model.train(train)
    for m in model.modules():
        if isinstance(m, (ts.SequenceDropout, ts.StepDropout)) or "Dropout" in type(m).__name__:
            m.eval()


def _compare(ts, network, train):
    torch.manual_seed(0)
    models = ts.builds(network, "tiny")
    x, y = ts.make_batch("tiny", torch.device("cpu"))
    x, results = x.double(), {}
    for model in models.values():
        model.double()
    _calibrate_batch_norm(models, x)
    for name, model in models.items():
        if train and name == "snntorch":
            continue
        _set_mode(ts, model, train)
        results[name] = _run(ts, model, x, y)
    loss, counts, grads = results.pop("snnlab")
    silent = sum(c == 0 for c in counts)
    assert silent <= 1, f"{silent} neuron layers are silent: the comparison would say little"
    for name, (other_loss, other_counts, other_grads) in results.items():
        assert other_counts == counts, f"{name}: spikes per layer differ"
        assert_close(other_loss, loss, rtol=1e-10, atol=1e-12, msg=f"{name}: loss")
        assert len(other_grads) == len(grads)
        # snnTorch evaluates its ATan surrogate in float32: errors of ~1e-8 of the largest
        # entry, which cancellations leave on entries near 0
        rel = 1e-6 if name.startswith("snntorch") else 1e-10
        for g_other, g in zip(other_grads, grads):
            assert_close(g_other, g, rtol=rel, atol=rel * float(g.abs().max()),
                         msg=f"{name}: a weight gradient")
    return results


@pytest.mark.parametrize("network", ["cnn", "snasnet"])
def test_builds_agree_in_eval_mode(ts, network):
    results = _compare(ts, network, train=False)
    assert "snntorch" in results and "snntorch_layerwise" in results


@pytest.mark.parametrize("network", ["cnn", "snasnet"])
def test_builds_with_pooled_batch_norm_agree_in_train_mode(ts, network):
    results = _compare(ts, network, train=True)
    assert "snntorch_layerwise" in results


def test_spikingjelly_build_is_tested_when_installed(ts):
    if ts.sj_neuron is None:
        pytest.skip("spikingjelly is not installed (benchmark-only; see benchmarks/requirements.txt)")
    assert "spikingjelly" in ts.builds("cnn", "tiny")
