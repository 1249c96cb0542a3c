"""SpikeDHS: trellis decoding, one-hot supernet = path network, genotype, temporal search,
resumable search loop, retraining network, bad inputs."""
import dataclasses
import itertools
import json
import math

import pytest
import torch
from torch.testing import assert_close

import snnlab.spikedhs_search as search_mod
from snnlab.darts_search import make_search_loaders
from snnlab.data import load_digits
from snnlab.dgs import get_stage_b, stage_lifs
from snnlab.neurons import LIF
from snnlab.profiles import get_profile
from snnlab.spikedhs import (SPIKEDHS_NEURON, SPIKEDHS_OPS, SpikeDHSGenotype, SpikeDHSNetwork,
                             SpikeDHSSupernet, map_channel_tau, path_network_from_supernet,
                             spikedhs_cell_key)
from snnlab.spikedhs_search import (SpikeDHSConfig, build_spikedhs_network,
                                    build_spikedhs_supernet, load_spikedhs_result,
                                    run_spikedhs_search, spikedhs_search)
from snnlab.temporal import (clamp_time_constants, read_time_constants, set_time_constant,
                             tie_time_constants)
from snnlab.trellis import (check_path, greedy_path, path_log_probability, path_probabilities,
                            transition_matrices, viterbi_path)

CELL = (("conv_3x3", 0), ("skip_connect", 1), ("conv_5x5", 1), ("conv_3x3", 2),
        ("skip_connect", 2), ("conv_3x3", 3))


def betas_from_moves(moves):
    """Logits [L, J, 2] from probabilities of moving down, p_down[l][j]."""
    p = torch.tensor(moves, dtype=torch.float64).clamp(1e-12, 1 - 1e-12)
    return torch.stack([torch.log(1 - p), torch.log(p)], dim=-1)


def all_paths(L, J):
    """Every path of L layers through J levels, starting from the stem at level 0."""
    for moves in itertools.product((0, 1), repeat=L):
        levels = tuple(itertools.accumulate(moves))
        if levels[-1] < J:
            yield levels


# ----------------------------------------------------------------------------- trellis

def test_transitions_and_path_probabilities():
    torch.manual_seed(0)
    M = transition_matrices(torch.randn(5, 3, 2))
    assert M.shape == (5, 3, 3)
    assert_close(M.sum(-1)[:, :2], torch.ones(5, 2))
    assert torch.all(M[:, 2, 2] == 0.5)                  # the coarsest stays: one of two moves
    assert torch.all(torch.triu(M, 2) == 0) and torch.all(torch.tril(M, -1) == 0)
    pi = path_probabilities(M)
    assert_close(pi.sum(-1), torch.ones(6))
    assert pi[0].tolist() == [1.0, 0.0, 0.0] and pi[1, 2] == 0          # growing triangle
    # pi[L] is the sum of the probabilities of all paths ending at each level
    ends = torch.zeros(3, dtype=torch.float64)
    for path in all_paths(5, 3):
        ends[path[-1]] += math.exp(path_log_probability(M, path))
    assert_close(ends.sum(), torch.tensor(1.0, dtype=torch.float64))
    assert_close(pi[-1].double(), ends, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("layers,levels", [(4, 3), (8, 4), (5, 2), (6, 7)])
def test_untrained_trellis_has_no_preferred_path(layers, levels):
    # beta = 0: every path equally likely, whatever the trellis boundary; Viterbi's
    # tie rule (lower level first) decodes "stay at full resolution".
    M = transition_matrices(torch.zeros(layers, levels, 2))
    paths = list(all_paths(layers, levels))
    log_p = [path_log_probability(M, p) for p in paths]
    assert max(log_p) - min(log_p) < 1e-12
    assert math.exp(log_p[0]) == pytest.approx(1 / len(paths))
    assert viterbi_path(M) == (0,) * layers
    assert greedy_path(M) == (0,) * layers


def test_rush_down_is_not_the_untrained_decode():
    # the bug this guards against: a forced stay of probability 1 made (1, 2, 2, 2) the
    # most probable path at beta = 0 on the tiny 4 x 3 trellis
    M = transition_matrices(torch.zeros(4, 3, 2))
    assert path_log_probability(M, (1, 2, 2, 2)) == pytest.approx(path_log_probability(M, (0, 0, 0, 0)))
    assert viterbi_path(M) != (1, 2, 2, 2)
    # a slight learned preference for going down wins over the tie
    betas = torch.zeros(4, 3, 2)
    betas[:, :, 1] = 0.01
    assert viterbi_path(transition_matrices(betas)) == (1, 2, 2, 2)


def test_final_level_distribution_counts_paths_at_beta_zero():
    # of the 11 four-layer paths, 1 ends at level 0, 4 at level 1 and 6 at level 2
    # (the heads get these weights: the share of the paths, not a boundary effect)
    pi = path_probabilities(transition_matrices(torch.zeros(4, 3, 2)))
    assert_close(pi[-1], torch.tensor([1.0, 4.0, 6.0]) / 11)


def test_viterbi_on_hand_built_betas_where_greedy_differs():
    # layer 0 from level 0: stay 0.6 / down 0.4; staying at 0 leads to coin flips (0.5),
    # going down leads to a sure stay (0.99): best path 1,1 (0.4 * 0.99) beats 0,x (0.6 * 0.5)
    M = transition_matrices(betas_from_moves([[0.4, 0.0, 0.0], [0.5, 0.01, 0.0]]))
    assert greedy_path(M) == (0, 0)                  # argmax 0.6, then a 0.5/0.5 tie -> stay
    assert viterbi_path(M) == (1, 1)
    assert path_log_probability(M, (1, 1)) == pytest.approx(math.log(0.4 * 0.99), rel=1e-6)


@pytest.mark.parametrize("seed", range(4))
def test_viterbi_equals_brute_force(seed):
    torch.manual_seed(seed)
    M = transition_matrices(2 * torch.randn(6, 4, 2))
    best = max(all_paths(6, 4), key=lambda p: path_log_probability(M, p))
    assert viterbi_path(M) == best


def test_official_path_is_decoded_from_matching_betas():
    official = (0, 0, 1, 1, 1, 2, 2, 2)             # the constant of the official README
    moves, prev = [], 0
    for level in official:                         # 0.9 for the official move, 0.1 otherwise
        row = [0.1] * 4
        row[prev] = 0.9 if level > prev else 0.1
        moves.append(row)
        prev = level
    assert viterbi_path(transition_matrices(betas_from_moves(moves))) == official


# ----------------------------------------------------------------------------- networks

def one_hot_tables(net: SpikeDHSSupernet, genotype: SpikeDHSGenotype) -> None:
    """Set alphas/betas to +-1e4 logits: softmax gives exact 0/1 weights in float32."""
    with torch.no_grad():
        offsets = [0, 2, 5]
        kept = {offsets[n // 2] + s: op for n, (op, s) in enumerate(genotype.cell)}
        net.alphas.fill_(-1e4)
        for e in range(net.alphas.shape[0]):
            net.alphas[e, net.ops.index(kept.get(e, "none"))] = 1e4
        prev = 0
        for l, level in enumerate(genotype.path):
            for i in range(net.levels):
                down = i == prev and level == prev + 1
                net.betas[l, i] = torch.tensor([-1e4, 1e4] if down else [1e4, -1e4])
            prev = level


@pytest.mark.parametrize("path,downsample", [((0, 1, 1, 2), "max"), ((1, 2, 2, 2), "nearest"),
                                             ((0, 0, 0, 1), "max")])
def test_one_hot_trellis_equals_the_single_path_network(path, downsample):
    torch.manual_seed(0)
    net = SpikeDHSSupernet(1, 10, T=3, layers=4, levels=3, filters=2, downsample=downsample)
    genotype = SpikeDHSGenotype(cell=CELL, path=path)
    one_hot_tables(net, genotype)
    derived = net.genotype()
    assert derived.path == path and derived.cell == CELL
    single = path_network_from_supernet(net, genotype)
    x = torch.rand(6, 1, 8, 8)
    assert_close(net(x), single(x), rtol=0, atol=0)
    # the retrained network has one cell per layer, at the path's level
    assert [c.level for c in single.cells] == list(path)


def test_supernet_shapes_parameters_and_gradients():
    torch.manual_seed(0)
    net = SpikeDHSSupernet(1, 10, T=2, layers=3, levels=3, filters=2)
    assert [len(cells) for cells in net.layers] == [2, 3, 3]            # growing triangle
    assert net.alphas.shape == (9, len(SPIKEDHS_OPS)) and net.betas.shape == (3, 3, 2)
    arch, weights = net.arch_parameters(), net.weight_parameters()
    assert {id(p) for p in arch}.isdisjoint(id(p) for p in weights)
    assert len(arch) + len(weights) == len(list(net.parameters()))
    assert any(p is net.heads[0].fc.weight for p in weights)           # the head trains
    logits = net(torch.rand(4, 1, 8, 8))
    assert logits.shape == (4, 10)
    logits.sum().backward()
    assert net.alphas.grad.abs().sum() > 0 and net.betas.grad.abs().sum() > 0
    assert net.heads[1].fc.weight.grad is not None


def test_genotype_derivation_follows_the_darts_rule():
    # edges: node 2 <- e0 (s0), e1 (s1); node 3 <- e2 (s0), e3 (s1), e4 (node 2);
    # node 4 <- e5 (s0), e6 (s1), e7 (node 2), e8 (node 3)
    torch.manual_seed(0)
    net = SpikeDHSSupernet(1, 10, T=2, layers=2, levels=2, filters=2)
    col = SPIKEDHS_OPS.index
    with torch.no_grad():
        net.alphas.zero_()
        net.alphas[:, col("none")] = 5.0                   # the largest weight, never kept
        for edge, op, logit in ((0, "conv_3x3", 2.0), (1, "skip_connect", 1.0),
                                (3, "conv_5x5", 3.0), (4, "conv_3x3", 2.5),
                                (7, "skip_connect", 1.5), (8, "conv_3x3", 1.0)):
            net.alphas[edge, col(op)] = logit
    g = net.genotype(b=(3.0, 2.8, 3.2))
    assert g.cell == CELL
    assert g.b == (3.0, 2.8, 3.2) and g.tau is None and g.concat == (2, 3, 4)


def test_genotype_round_trips_and_rejects_bad_input():
    g = SpikeDHSGenotype(cell=CELL, path=(0, 0, 1, 1, 1, 2, 2, 2), b=(3.0,) * 9,
                         tau=(1.25,) * 8 + ((1.5, 2.0),))
    assert SpikeDHSGenotype.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    assert eval(repr(g), {"SpikeDHSGenotype": SpikeDHSGenotype}) == g
    assert "node 2 = LIF(conv_3x3(s0), skip_connect(s1))" in str(g)
    with pytest.raises(ValueError, match="moves from level 0 to 2"):
        SpikeDHSGenotype(cell=CELL, path=(0, 2))
    with pytest.raises(ValueError, match="b must hold 3 values"):
        SpikeDHSGenotype(cell=CELL, path=(0, 1), b=(3.0, 3.0))
    with pytest.raises(ValueError, match="tau must hold"):
        SpikeDHSGenotype(cell=CELL, path=(0, 1), tau=(0.5, 1.2, 1.2))
    with pytest.raises(ValueError, match="source"):
        SpikeDHSGenotype(cell=(("conv_3x3", 2), ("conv_3x3", 1)), path=(0,))
    with pytest.raises(ValueError, match="keys"):
        SpikeDHSGenotype.from_dict({"cell": [], "layers": []})
    with pytest.raises(ValueError, match="reaches level 3"):
        check_path((0, 1, 2, 3), levels=3)


def test_retrained_network_uses_b_and_tau_per_stage():
    g = SpikeDHSGenotype(cell=CELL, path=(0, 1, 1), b=(1.0, 2.0, 3.0, 4.0),
                         tau=(1.5, 2.0, (1.1, 3.0), 4.0))
    net = SpikeDHSNetwork(g, in_channels=1, num_classes=10, T=2, filters=3)
    assert get_stage_b(net) == [1.0, 2.0, 3.0, 4.0]
    stem_tau = stage_lifs(net, 0)[0].tau
    assert_close(stem_tau, torch.full((9,), 1.5))                      # per channel everywhere
    node = stage_lifs(net, 2)[0]                             # C = 6 channels, quantile-mapped
    assert_close(node.tau, torch.tensor([1.1] * 3 + [3.0] * 3), rtol=1e-5, atol=1e-6)
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, 10)
    assert spikedhs_cell_key("cells.1.nodes.0") == "cell1"
    assert spikedhs_cell_key("layers.2.1.input0.lif") == "layer2.level1"


def test_map_channel_tau_transfers_the_distribution():
    searched = [2.0, 1.2, 3.5, 1.6]
    assert map_channel_tau(searched, 4) == searched                     # same width: identity
    wide = map_channel_tau(searched, 12)                                # 3x wider
    assert wide == sorted(searched * 3)                                 # each value 3 times
    assert map_channel_tau(searched, 2) == [1.6, 3.5]                   # order statistics 1, 3
    odd = map_channel_tau(searched, 6)                                  # ratio 1.5
    assert sorted(set(odd)) == sorted(searched) and odd == sorted(odd)
    # quantiles within one rank: the empirical CDFs differ by at most 1/n anywhere
    for t in sorted(searched):
        below_new = sum(v <= t for v in odd) / len(odd)
        below_old = sum(v <= t for v in searched) / len(searched)
        assert abs(below_new - below_old) <= 1 / len(searched)
    with pytest.raises(ValueError, match="channels"):
        map_channel_tau(searched, 0)
    with pytest.raises(ValueError, match="at least one"):
        map_channel_tau([], 3)


def test_spikedhs_neuron_back_propagates_through_the_reset():
    assert SPIKEDHS_NEURON["detach_reset"] is False                     # as SNN.py
    net = SpikeDHSNetwork(SpikeDHSGenotype(cell=CELL, path=(0, 1)), 1, 10, T=3, filters=2)
    assert all(not lif.detach_reset for lif in net.modules() if isinstance(lif, LIF))
    # the reset's gradient is there: detaching it changes the input gradient, not the spikes
    x = (torch.rand(4, 2, 5) * 2).requires_grad_()
    grads, spikes = [], []
    for detach in (False, True):
        lif = LIF(**{**SPIKEDHS_NEURON, "detach_reset": detach})
        out = lif(x)
        grads.append(torch.autograd.grad(out.sum(), x)[0])
        spikes.append(out)
    assert_close(spikes[0], spikes[1], rtol=0, atol=0)
    assert not torch.allclose(grads[0], grads[1])


def test_networks_reject_bad_inputs():
    net = SpikeDHSSupernet(1, 10, T=2, layers=2, levels=2, filters=2)
    with pytest.raises(ValueError, match="input channels"):
        net(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\]"):
        net(torch.rand(8, 8))
    with pytest.raises(ValueError, match="unknown op"):
        SpikeDHSSupernet(1, 10, ops=("none", "conv_7x7"))
    with pytest.raises(ValueError, match="downsample"):
        SpikeDHSSupernet(1, 10, downsample="bilinear")
    with pytest.raises(ValueError, match="betas must be"):
        transition_matrices(torch.zeros(3, 4))
    with pytest.raises(TypeError, match="SpikeDHSGenotype"):
        SpikeDHSNetwork({"cell": CELL}, 1, 10)


# ----------------------------------------------------------------------------- temporal

def test_tied_time_constants_are_shared_learned_and_clamped():
    lifs = [LIF(tau=2.0, learn_tau=True) for _ in range(3)]
    params = tie_time_constants({"stage.1": lifs}, tau=1.5)
    assert list(params) == ["stage_1"]
    assert all(lif.tau_param is params["stage_1"] for lif in lifs)
    assert_close(lifs[2].tau, torch.tensor(1.5))
    with torch.no_grad():
        params["stage_1"].fill_(50.0)                                   # tau = 1 + e^50
    clamp_time_constants(params, (1.05, 8.0))
    assert read_time_constants(params)["stage_1"] == pytest.approx(8.0)
    with torch.no_grad():
        params["stage_1"].fill_(-50.0)
    clamp_time_constants(params, (1.05, 8.0))
    assert read_time_constants(params)["stage_1"] == pytest.approx(1.05)
    with pytest.raises(ValueError, match="learn_tau=True"):
        tie_time_constants({"a": [LIF()]}, tau=1.5)
    with pytest.raises(ValueError, match="1 < low <= high"):
        clamp_time_constants(params, (1.0, 8.0))
    fixed = LIF(tau=2.0, channels=3)
    set_time_constant(fixed, [1.5, 2.0, 4.0])
    assert_close(fixed.tau, torch.tensor([1.5, 2.0, 4.0]))
    with pytest.raises(ValueError, match="one value per channel"):
        set_time_constant(fixed, [1.5, 2.0])


# ----------------------------------------------------------------------------- search

def tiny_config(**overrides):
    base = dict(epochs=2, layers=2, levels=2, filters=2, T=2, batch_size=16, max_images=64,
                lr=0.1, arch_lr=0.05, dgs=True, dgs_every=1, dgs_batches=1,
                dgs_deltas=(-0.4, 0.0, 0.4), temporal=True, tau_range=(1.1, 3.0), tau_lr=0.5,
                nos_batches=1)
    return SpikeDHSConfig(**{**base, **overrides})


@pytest.fixture
def digits():
    return load_digits(seed=0)


def run_search(config, bundle, **kwargs):
    torch.manual_seed(config.seed)
    loaders = make_search_loaders(bundle, config.batch_size, config.seed, config.train_portion,
                                  config.max_images)
    model = build_spikedhs_supernet(config, bundle)
    history, dgs = spikedhs_search(model, loaders.train, loaders.val, config, device="cpu",
                                   progress=False, **kwargs)
    return model, history, dgs


def strip(history):
    """History without wall-clock times (the only values that may differ between runs)."""
    rows = []
    for row in history:
        row = {k: v for k, v in row.items() if k != "seconds"}
        if row.get("dgs"):
            row["dgs"] = {k: v for k, v in row["dgs"].items() if k != "seconds"}
        rows.append(row)
    return rows


def test_search_logs_and_keeps_taus_in_range(digits):
    config = tiny_config()
    model, history, dgs = run_search(config, digits)
    row = history[-1]
    assert [r["epoch"] for r in history] == [1, 2]
    assert len(row["b"]) == 3 and all(1.0 <= b <= 6.0 for b in row["b"])
    assert row["dgs"]["batches"] == 1 and len(dgs.trajectory) == 2
    assert set(row["tau"]) == {"stage0", "stage1", "stage2"}
    assert all(1.1 - 1e-6 <= t <= 3.0 + 1e-6 for t in row["tau"].values())
    assert set(row["nos_per_cell"]) == {"stem", "layer0.level0", "layer0.level1",
                                        "layer1.level0", "layer1.level1"}
    assert len(row["alphas"]) == 9 and len(row["betas"]) == 2
    genotype = SpikeDHSGenotype.from_dict(row["genotype"])
    assert genotype.path == tuple(row["path"]) and genotype.b == tuple(row["b"])
    assert genotype.tau == tuple(row["tau"][f"stage{k}"] for k in range(3))
    json.dumps(history)                                                 # JSON-able
    profile = dataclasses.replace(get_profile("tiny"), spikedhs_T=2, spikedhs_retrain_filters=3)
    net = build_spikedhs_network({"genotype": row["genotype"],
                                  "config": {"tau": 1.25, "threshold": 0.5}}, profile, digits)
    assert get_stage_b(net) == list(genotype.b)
    assert [c.level for c in net.cells] == list(genotype.path)
    assert net(torch.rand(2, 1, 8, 8)).shape == (2, 10)


def test_per_channel_time_constants_are_searched_and_retrained(digits):
    config = tiny_config(epochs=1, dgs=False, tau_channels=True)
    model, history, _ = run_search(config, digits)
    groups = model.time_constant_groups()
    assert set(groups) == {"stage0", "stage1_level0", "stage1_level1", "stage2_level0",
                           "stage2_level1"}
    genotype = SpikeDHSGenotype.from_dict(history[-1]["genotype"])
    widths = [6] + [2 * 2 ** level for level in genotype.path]          # 3F, then F 2^level
    assert [len(t) for t in genotype.tau] == widths
    assert all(1.1 - 1e-6 <= t <= 3.0 + 1e-6 for v in genotype.tau for t in v)
    net = SpikeDHSNetwork(genotype, 1, 10, T=2, filters=4)            # twice as wide
    stem = stage_lifs(net, 0)[0]                                      # each value twice, sorted
    assert_close(stem.tau, torch.tensor(sorted(genotype.tau[0] * 2)), rtol=1e-5, atol=1e-6)
    same = SpikeDHSNetwork(genotype, 1, 10, T=2, filters=2)           # same width: unchanged
    assert_close(stage_lifs(same, 0)[0].tau, torch.tensor(genotype.tau[0]), rtol=1e-5,
                 atol=1e-6)


def test_run_spikedhs_search_writes_a_result_the_retraining_reads(digits, tmp_path):
    profile = dataclasses.replace(get_profile("tiny"), spikedhs_layers=2, spikedhs_levels=2,
                                  spikedhs_filters=2, spikedhs_T=2, spikedhs_retrain_filters=2)
    out = tmp_path / "result.json"
    result = run_spikedhs_search(profile, digits, dgs=False, temporal=True, epochs=1, seed=1,
                                 out=out, device="cpu", progress=False, max_images=48,
                                 batch_size=16, nos_batches=1)
    assert result == json.loads(json.dumps(result))                    # JSON-able as is
    again = load_spikedhs_result(out)
    assert again["genotype"] == result["genotype"] and again["method"] == "spikedhs"
    assert result["genotype"]["b"] is None and len(result["genotype"]["tau"]) == 3
    assert result["config"]["temporal"] and result["config"]["seed"] == 1
    net = build_spikedhs_network(again, profile, digits)
    taus = [stage_lifs(net, k)[0].tau.item() for k in range(3)]
    assert taus == pytest.approx(result["genotype"]["tau"], rel=1e-5)
    with pytest.raises(ValueError, match="not a SpikeDHS search result"):
        (tmp_path / "other.json").write_text(json.dumps({"method": "darts"}))
        load_spikedhs_result(tmp_path / "other.json")


def test_search_resume_equals_uninterrupted_search(digits, tmp_path, monkeypatch):
    config = tiny_config()
    _, full, dgs_full = run_search(config, digits)

    ckpt = tmp_path / "search.pt"
    real_epoch = search_mod._epoch

    def crash_in_epoch_2(model, config, *args):
        if args[-2] == 2:                                               # epoch argument
            raise KeyboardInterrupt("simulated crash")
        return real_epoch(model, config, *args)

    monkeypatch.setattr(search_mod, "_epoch", crash_in_epoch_2)
    with pytest.raises(KeyboardInterrupt):
        run_search(config, digits, checkpoint=ckpt)
    monkeypatch.setattr(search_mod, "_epoch", real_epoch)
    model, resumed, dgs_resumed = run_search(config, digits, checkpoint=ckpt, resume=True)
    assert strip(resumed) == strip(full)
    assert dgs_resumed.trajectory == dgs_full.trajectory
    with pytest.raises(ValueError, match="different SpikeDHSConfig"):
        run_search(tiny_config(filters=3), digits, checkpoint=ckpt, resume=True)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="layers"):
        SpikeDHSConfig(layers=0)
    with pytest.raises(ValueError, match="downsample"):
        SpikeDHSConfig(downsample="area")
    with pytest.raises(ValueError, match="tau"):
        SpikeDHSConfig(temporal=True, tau=1.0)
    with pytest.raises(ValueError, match="dgs_deltas"):
        SpikeDHSConfig(dgs_deltas=(-0.2, 0.2))
    with pytest.raises(ValueError, match=r"\bb\b"):
        SpikeDHSConfig(b=9.0)
    with pytest.raises(ValueError, match="unknown op"):
        SpikeDHSConfig(ops=("none", "conv_9x9"))
    with pytest.raises(TypeError, match="unknown SpikeDHSConfig field"):
        SpikeDHSConfig.from_profile(get_profile("tiny"), trellis=3)
    assert SpikeDHSConfig.from_profile(get_profile("paper")).filters == 8
    with pytest.raises(TypeError, match="SpikeDHSConfig"):
        spikedhs_search(SpikeDHSSupernet(1, 10, layers=1, levels=1, filters=1), [], [],
                        config={"epochs": 1})


def test_config_from_profile_reads_the_time_constant_rate():
    # the command line and chapter 6 must search time constants at the same rate
    from snnlab.profiles import get_profile
    from snnlab.spikedhs_search import SpikeDHSConfig
    tiny = get_profile("tiny")
    assert SpikeDHSConfig.from_profile(tiny).tau_lr == tiny.spikedhs_tau_lr
