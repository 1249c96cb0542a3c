"""The SNASNet training-free score (kernels, hooks, modes, state carry-over) and the searches."""
import dataclasses
import json
import math
import random
import warnings

import numpy as np
import pytest
import torch
from torch import nn

from snnlab.encoding import direct
from snnlab.layers import TimeDistributed
from snnlab.models import SpikingCNN
from snnlab.neurons import LIF
from snnlab.trainfree import (SearchResult, evolutionary_search, hamming_distance, logdet,
                              naswot_kernel, random_search, sahd_kernel, sample_batches,
                              score_kernels, scores_per_batch, snasnet_score)

# three hand-made codes, N = 4 neurons
CODES = torch.tensor([[1, 1, 1, 0],     # r = 3/4
                      [1, 0, 0, 0],     # r = 1/4
                      [0, 0, 0, 0]])    # r = 0


# ----------------------------------------------------------------------------- kernels

def test_hamming_distance_by_hand():
    expected = torch.tensor([[0., 2., 3.], [2., 0., 1.], [3., 1., 0.]], dtype=torch.float64)
    torch.testing.assert_close(hamming_distance(CODES), expected, rtol=0, atol=0)
    x = CODES.double()                   # the official two products give the same
    torch.testing.assert_close(hamming_distance(CODES), x @ (1 - x).T + (1 - x) @ x.T,
                               rtol=0, atol=0)
    assert hamming_distance(CODES.bool()).dtype == torch.float64


def test_sahd_kernel_by_hand():
    # E_ij = N [r_i (1 - r_j) + (1 - r_i) r_j]: E01 = 4 (9/16 + 1/16) = 2.5, E02 = 3, E12 = 1
    k01, k02, k12 = 4 - 0.5 * 2 / 2.501, 4 - 0.5 * 3 / 3.001, 4 - 0.5 * 1 / 1.001
    expected = torch.tensor([[4, k01, k02], [k01, 4, k12], [k02, k12, 4]], dtype=torch.float64)
    torch.testing.assert_close(sahd_kernel(CODES), expected, rtol=0, atol=1e-12)
    # the constants are arguments
    k01 = 4 - 0.25 * 2 / (2.5 + 0.1)
    assert sahd_kernel(CODES, alpha=0.25, eps=0.1)[0, 1].item() == pytest.approx(k01, abs=1e-12)


def test_sahd_rate_normaliser_by_hand():
    # without N (SpikeNAS-Bench, official January code): E01 = 9/16 + 1/16 = 0.625,
    # E02 = 3/4, E12 = 1/4; d_H as above
    k01, k02, k12 = 4 - 0.5 * 2 / 0.626, 4 - 0.5 * 3 / 0.751, 4 - 0.5 * 1 / 0.251
    expected = torch.tensor([[4, k01, k02], [k01, 4, k12], [k02, k12, 4]], dtype=torch.float64)
    torch.testing.assert_close(sahd_kernel(CODES, normaliser="rate"), expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(sahd_kernel(CODES, normaliser="count"), sahd_kernel(CODES))
    with pytest.raises(ValueError, match="normaliser"):
        sahd_kernel(CODES, normaliser="neurons")


def test_naswot_kernel_by_hand():
    expected = torch.tensor([[4., 2., 1.], [2., 4., 3.], [1., 3., 4.]], dtype=torch.float64)
    torch.testing.assert_close(naswot_kernel(CODES), expected, rtol=0, atol=0)
    x = CODES.double()                   # NASWOT's form: x x^T + (1 - x)(1 - x)^T
    torch.testing.assert_close(naswot_kernel(CODES), x @ x.T + (1 - x) @ (1 - x).T)


def test_kernels_accept_leading_dims():
    codes = torch.rand(3, 5, 40) > 0.7                               # [S, B, N]
    batched = sahd_kernel(codes)
    assert batched.shape == (3, 5, 5)
    for s in range(3):
        torch.testing.assert_close(batched[s], sahd_kernel(codes[s]), rtol=0, atol=1e-12)


def test_codes_must_be_binary():
    with pytest.raises(ValueError, match="binary"):
        hamming_distance(torch.tensor([[0.5, 1.0], [0.0, 1.0]]))
    with pytest.raises(ValueError, match=r"\[\.\.\., B, N\]"):
        sahd_kernel(torch.ones(4))


def test_logdet_matches_numpy_and_ignores_sign():
    g = torch.Generator().manual_seed(0)
    A = torch.randn(6, 6, generator=g, dtype=torch.float64)
    if torch.linalg.det(A) > 0:
        A[0] = -A[0]                                     # make det(A) negative
    for K in (A @ A.T + torch.eye(6, dtype=torch.float64), A):
        sign, expected = np.linalg.slogdet(K.numpy())
        assert logdet(K) == pytest.approx(expected, rel=1e-12)
    assert np.linalg.slogdet(A.numpy())[0] < 0          # A has a negative determinant
    assert logdet(np.eye(3) * 2) == pytest.approx(3 * math.log(2))
    assert logdet(torch.ones(3, 3)) == -math.inf        # singular: -inf
    with pytest.raises(ValueError, match="square"):
        logdet(torch.ones(2, 3))


# ----------------------------------------------------------------------------- score

class TwoLIF(nn.Module):
    """Linear -> LIF -> Linear -> LIF on direct-encoded vectors [B, F] (or [T, B, F])."""

    def __init__(self, features=12, hidden=20, T=3):
        super().__init__()
        self.T = T
        self.fc1, self.fc2 = TimeDistributed(nn.Linear(features, hidden)), \
            TimeDistributed(nn.Linear(hidden, hidden))
        self.lif1, self.lif2 = LIF(tau=2.0, threshold=0.5), LIF(tau=2.0, threshold=0.5)

    def forward(self, x):
        x_seq = direct(x, self.T) if x.dim() == 2 else x
        return self.lif2(self.fc2(self.lif1(self.fc1(x_seq))))


class TwoLIFStepwise(TwoLIF):
    """The same network run one step at a time, as a cell with feedback edges does."""

    def forward(self, x):
        v1 = v2 = None
        out = []
        for _ in range(self.T):
            s1, trace1 = self.lif1(self.fc1(x.unsqueeze(0)), record=True, v0=v1)
            s2, trace2 = self.lif2(self.fc2(s1), record=True, v0=v2)
            v1, v2 = trace1.v_final, trace2.v_final
            out.append(s2[0])
        return torch.stack(out)


def _batches(n=2, B=16, F=12, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(B, F, generator=g) * 2 for _ in range(n)]


def _manual_kernels(model, batches, carry):
    """Expected mean kernels, by running the layers by hand (2 LIFs x T steps per batch)."""
    kernels, v1, v2 = [], None, None
    for x in batches:
        if not carry:
            v1 = v2 = None
        s1, t1 = model.lif1(model.fc1(direct(x, model.T)), record=True, v0=v1)
        s2, t2 = model.lif2(model.fc2(s1), record=True, v0=v2)
        v1, v2 = t1.v_final, t2.v_final
        codes = torch.cat([s1, s2]) > 0                               # [2T, B, N]
        kernels.append(sahd_kernel(codes).mean(0))
    return kernels


@pytest.mark.parametrize("carry", [False, True])
def test_kernel_is_the_mean_over_layers_and_steps(carry):
    torch.manual_seed(0)
    model = TwoLIF()
    batches = _batches()
    with torch.no_grad():
        expected = _manual_kernels(model, batches, carry)
    got = score_kernels(model, batches, reset_between_batches=not carry)
    for k_got, k_exp in zip(got, expected):
        torch.testing.assert_close(k_got, k_exp, rtol=0, atol=1e-9)
    score = snasnet_score(model, batches, reset_between_batches=not carry)
    assert score == pytest.approx(np.mean([logdet(k) for k in expected]), abs=1e-9)


@pytest.mark.parametrize("reset", [True, False])
def test_step_by_step_calls_count_like_multi_step(reset):
    torch.manual_seed(0)
    multi = TwoLIF()
    stepwise = TwoLIFStepwise()
    stepwise.load_state_dict(multi.state_dict())
    batches = _batches()
    for k_multi, k_step in zip(score_kernels(multi, batches, reset_between_batches=reset),
                               score_kernels(stepwise, batches, reset_between_batches=reset)):
        torch.testing.assert_close(k_multi, k_step, rtol=0, atol=1e-9)


def test_reset_between_batches_matters_on_a_model_with_memory():
    torch.manual_seed(0)
    model = TwoLIF(T=2)
    batches = _batches(n=3)
    kept = snasnet_score(model, batches, reset_between_batches=False)
    fresh = snasnet_score(model, batches, reset_between_batches=True)
    assert kept != fresh
    # the first batch starts from rest either way
    first_kept = score_kernels(model, batches, reset_between_batches=False)[0]
    first_fresh = score_kernels(model, batches, reset_between_batches=True)[0]
    torch.testing.assert_close(first_kept, first_fresh, rtol=0, atol=0)


def _cnn(seed=0):
    torch.manual_seed(seed)
    return SpikingCNN(in_channels=1, num_classes=10, widths=(8, 16), T=3, image_size=8)


def _images(n=2, B=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.rand(B, 1, 8, 8, generator=g) for _ in range(n)]


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("kernel", ["sahd", "hamming"])
def test_score_is_invariant_to_sample_order(mode, kernel):
    model, batches = _cnn(), _images()
    perm = torch.randperm(24, generator=torch.Generator().manual_seed(1))
    shuffled = [x[perm] for x in batches]
    a = snasnet_score(model, batches, kernel=kernel, mode=mode)
    b = snasnet_score(model, shuffled, kernel=kernel, mode=mode)
    assert math.isfinite(a)
    assert b == pytest.approx(a, rel=1e-9, abs=1e-6)


def test_train_and_eval_modes_differ_and_each_is_deterministic():
    batches = _images()
    train = [snasnet_score(_cnn(), batches, mode="train") for _ in range(2)]
    evals = [snasnet_score(_cnn(), batches, mode="eval") for _ in range(2)]
    assert train[0] == train[1] and evals[0] == evals[1]
    assert train[0] != evals[0]          # BN: batch statistics vs fresh running statistics


def test_model_is_left_as_it_was():
    model = _cnn()
    model.train()
    model.features[0].eval()             # a mixed state is restored module by module
    flags = [m.training for m in model.modules()]
    buffers = {k: v.clone() for k, v in model.state_dict().items()}
    snasnet_score(model, _images(), mode="train", reset_between_batches=False)
    snasnet_score(model, _images(), mode="eval")
    assert [m.training for m in model.modules()] == flags
    for k, v in model.state_dict().items():           # BN running statistics unchanged
        torch.testing.assert_close(v, buffers[k], rtol=0, atol=0)
    for m in model.modules():                         # every hook removed
        assert not m._forward_hooks and not m._forward_pre_hooks
    assert torch.is_grad_enabled()


def test_hooks_are_removed_after_an_error():
    model = _cnn()
    with pytest.raises(ValueError, match="1 channel"):   # SpikingCNN names the shape
        snasnet_score(model, [torch.rand(4, 3, 8, 8)])     # wrong channel count
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())


def test_bad_arguments_are_clear_errors():
    model = _cnn()
    with pytest.raises(ValueError, match="kernel"):
        snasnet_score(model, _images(), kernel="cosine")
    with pytest.raises(ValueError, match="mode"):
        snasnet_score(model, _images(), mode="test")
    with pytest.raises(TypeError, match=r"\[x\]"):
        snasnet_score(model, torch.rand(4, 1, 8, 8))
    with pytest.raises(ValueError, match="at least 2"):
        snasnet_score(model, [torch.rand(1, 1, 8, 8)])
    with pytest.raises(ValueError, match="empty"):
        snasnet_score(model, [])
    with pytest.raises(ValueError, match="same shape"):
        snasnet_score(model, [torch.rand(8, 1, 8, 8), torch.rand(6, 1, 8, 8)],
                      reset_between_batches=False)
    with pytest.raises(ValueError, match="no snnlab.neurons.LIF"):
        snasnet_score(nn.Linear(3, 2), [torch.rand(4, 3)])


def test_pairs_from_a_loader_are_accepted():
    batches = _images()
    pairs = [(x, torch.zeros(len(x), dtype=torch.long)) for x in batches]
    assert snasnet_score(_cnn(), pairs) == snasnet_score(_cnn(), batches)


def test_sample_batches_is_seeded_and_leaves_the_global_rng_alone():
    from snnlab.data import load_digits
    train = load_digits(seed=0).train
    state = torch.get_rng_state()
    a = sample_batches(train, batches=2, batch_size=32, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    b = sample_batches(train, batches=2, batch_size=32, seed=3)
    c = sample_batches(train, batches=2, batch_size=32, seed=4)
    assert [x.shape for x in a] == [torch.Size([32, 1, 8, 8])] * 2
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a[0], c[0])
    with pytest.raises(ValueError, match="lower batch_size"):
        sample_batches(train, batches=2, batch_size=10_000)


# ----------------------------------------------------------------------------- searches

@dataclasses.dataclass(frozen=True)
class FakeGenotype:
    """A two-knob 'architecture': hidden width index and threshold index (4 x 4 = 16)."""

    width: int
    threshold: int

    def to_dict(self):
        return {"width": self.width, "threshold": self.threshold}

    @classmethod
    def from_dict(cls, d):
        return cls(**d)


class FakeSpace:
    kind = "fake"
    size = 16

    def sample(self, rng):
        return FakeGenotype(rng.randrange(4), rng.randrange(4))

    def mutate(self, genotype, rng):
        if rng.random() < 0.5:
            return dataclasses.replace(genotype, width=rng.randrange(4))
        return dataclasses.replace(genotype, threshold=rng.randrange(4))


def build_fake(genotype):
    return SpikingCNN(in_channels=1, num_classes=10, widths=(4 + 4 * genotype.width,), T=2,
                      image_size=8, threshold=0.25 + 0.25 * genotype.threshold)


def _ranking(result):
    return [(r["genotype"], r["score"]) for r in result.ranking]


@pytest.mark.parametrize("search", [random_search, evolutionary_search])
def test_search_is_deterministic_under_a_seed(search):
    kwargs = dict(population=4, sample_size=2) if search is evolutionary_search else {}
    batches = _images(B=12)
    a = search(FakeSpace(), build_fake, batches, candidates=6, seed=0, progress=False, **kwargs)
    b = search(FakeSpace(), build_fake, batches, candidates=6, seed=0, progress=False, **kwargs)
    c = search(FakeSpace(), build_fake, batches, candidates=6, seed=1, progress=False, **kwargs)
    assert _ranking(a) == _ranking(b)
    assert _ranking(a) != _ranking(c)
    state = (random.getstate(), torch.get_rng_state())
    search(FakeSpace(), build_fake, batches, candidates=2, seed=0, progress=False, **kwargs)
    assert random.getstate() == state[0] and torch.equal(torch.get_rng_state(), state[1])
    scores = [r["score"] for r in a.ranking]
    assert scores == sorted(scores, reverse=True)
    assert a.best == a.ranking[0]["genotype"] and a.best_score == scores[0]
    assert a.candidates == 6 and a.draws >= 6 and a.seconds > 0
    assert sorted(r["order"] for r in a.ranking) == list(range(6))
    assert a.best_genotype(FakeGenotype) == FakeGenotype(**a.best)


def test_a_genotype_scores_the_same_in_every_search():
    batches = _images(B=12)
    rnd = random_search(FakeSpace(), build_fake, batches, candidates=8, seed=5, progress=False)
    evo = evolutionary_search(FakeSpace(), build_fake, batches, candidates=8, population=4,
                              sample_size=2, seed=5, progress=False)
    by_key = {json.dumps(r["genotype"], sort_keys=True): r["score"] for r in rnd.ranking}
    shared = [r for r in evo.ranking if json.dumps(r["genotype"], sort_keys=True) in by_key]
    assert shared, "the two searches should meet on at least one of 16 genotypes"
    for r in shared:
        assert r["score"] == by_key[json.dumps(r["genotype"], sort_keys=True)]


@pytest.mark.parametrize("search", [random_search, evolutionary_search])
def test_repeats_are_not_rescored_and_the_budget_holds(search):
    kwargs = dict(population=4, sample_size=3) if search is evolutionary_search else {}
    built = []

    def build(genotype):
        built.append(genotype)
        return build_fake(genotype)

    result = search(FakeSpace(), build, _images(B=8), candidates=12, seed=0, progress=False,
                    **kwargs)
    assert len(built) == len(set(built)) == result.candidates == 12
    assert result.draws > 12             # 12 of 16 genotypes: some draws repeat
    assert len({json.dumps(r["genotype"], sort_keys=True) for r in result.ranking}) == 12


def test_a_small_space_runs_out_with_a_warning():
    with pytest.warns(UserWarning, match="16 distinct genotypes of the 20"):
        result = random_search(FakeSpace(), build_fake, _images(B=8), candidates=20, seed=0,
                               progress=False)
    assert result.candidates == 16


def test_evolution_with_a_budget_below_the_population_is_random_search():
    batches = _images(B=8)
    evo = evolutionary_search(FakeSpace(), build_fake, batches, candidates=3, population=5,
                              sample_size=2, seed=2, progress=False)
    rnd = random_search(FakeSpace(), build_fake, batches, candidates=3, seed=2, progress=False)
    assert _ranking(evo) == _ranking(rnd)


def test_search_settings_and_errors():
    batches = _images(B=8)
    result = random_search(FakeSpace(), build_fake, batches, candidates=2, seed=0,
                           progress=False, mode="eval", kernel="hamming")
    s = result.settings
    assert (s["mode"], s["kernel"], s["reset_between_batches"], s["batches"],
            s["batch_size"], s["seed"], s["candidates"]) == ("eval", "hamming", True, 2, 8, 0, 2)
    assert s["space"] == {"type": "FakeSpace", "kind": "fake", "size": 16}
    with pytest.raises(TypeError, match="unknown score argument"):
        random_search(FakeSpace(), build_fake, batches, candidates=2, kernal="sahd")
    with pytest.raises(ValueError, match="candidates"):
        random_search(FakeSpace(), build_fake, batches, candidates=0)
    with pytest.raises(ValueError, match="sample_size"):
        evolutionary_search(FakeSpace(), build_fake, batches, candidates=4, population=2,
                            sample_size=3)
    class NoMutation:
        sample = FakeSpace.sample
    with pytest.raises(TypeError, match="mutate"):
        evolutionary_search(NoMutation(), build_fake, batches, candidates=4)


def test_search_result_json_round_trip(tmp_path):
    result = random_search(FakeSpace(), build_fake, _images(B=8), candidates=3, seed=0,
                           progress=False)
    result = dataclasses.replace(result, history=result.history + (
        {"genotype": {"width": 9, "threshold": 9}, "score": -math.inf, "order": 3,
         "seconds": 0.0},))
    path = tmp_path / "sub" / "result.json"
    result.save(path)
    assert [p.name for p in path.parent.iterdir()] == ["result.json"]    # no temp file left
    assert SearchResult.load(path) == result
    assert SearchResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SearchResult.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="missing field"):
        SearchResult.load(tmp_path / "bad.json")


def test_progress_bar_runs(capsys):
    random_search(FakeSpace(), build_fake, _images(B=8), candidates=2, seed=0, progress=True)
    assert "random search" in capsys.readouterr().err


def test_a_silent_network_scores_minus_inf_and_the_search_warns():
    def silent(genotype):
        return SpikingCNN(in_channels=1, num_classes=10, widths=(4,), T=2, image_size=8,
                          threshold=1e6)
    assert snasnet_score(silent(None), _images(B=8)) == -math.inf
    with pytest.warns(UserWarning, match="every candidate scored -inf"):
        result = random_search(FakeSpace(), silent, _images(B=8), candidates=2, progress=False)
    assert [r["order"] for r in result.ranking] == [0, 1]      # ties keep the draw order


# ----------------------------------------------------------------------------- several kernels

def test_scores_per_batch_equals_one_score_per_kernel_in_one_forward():
    model, batches = _cnn(), _images(n=2, B=12)
    calls = []
    handle = model.register_forward_hook(lambda *a: calls.append(1))
    torch.manual_seed(0)
    multi = scores_per_batch(model, batches, kernels=("sahd", "sahd_rate", "hamming"))
    assert len(calls) == 2                                        # one forward per batch
    handle.remove()
    for kernel, per_batch in multi.items():
        assert len(per_batch) == 2
        torch.manual_seed(0)                                      # the same dropout masks
        assert snasnet_score(model, batches, kernel=kernel) == pytest.approx(
            float(np.mean(per_batch)), rel=1e-12)
        torch.manual_seed(0)
        kernels = score_kernels(model, batches, kernel=kernel)
        assert [logdet(K) for K in kernels] == pytest.approx(per_batch, rel=1e-12)
    assert multi["sahd_rate"] != multi["sahd"]


@pytest.mark.parametrize("kernels", ["sahd", (), ("sahd", "sahd"), ("sahd", "cosine")])
def test_scores_per_batch_checks_kernels(kernels):
    with pytest.raises((TypeError, ValueError), match="kernels"):
        scores_per_batch(_cnn(), _images(), kernels=kernels)
