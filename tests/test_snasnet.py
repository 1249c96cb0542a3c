"""SNASNet: genotypes, spaces, the cell's time semantics and the macro network."""
import json
import math
import random
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from snnlab.encoding import direct
from snnlab.layers import TimeDistributed
from snnlab.neurons import LIF
from snnlab.ops import OPS, SNASNET_OPS, SpikeConvBN, register_op, step_neuron
from snnlab.profiles import get_profile
from snnlab.snasnet import (SNASNET_NEURON, CellGenotype, Edge, SequenceDropout, SNASNet,
                            SNASNetCell, SNASNetSpace, build_snasnet)

CIFAR10_CELL = "0303 0030 2002 0200"     # released genotypes (official README L61-83)
CIFAR100_CELL = "0302 0030 3003 0000"
DIGITS = SimpleNamespace(in_channels=1, num_classes=10, image_size=8)


@pytest.fixture
def registry():
    """Restore the op registry after a test that registers ops."""
    before = dict(OPS)
    yield OPS
    OPS.clear()
    OPS.update(before)


def _seq(*shape, seed=0, scale=1.0):
    return scale * torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---- genotype: parse, print, serialise -----------------------------------------

@pytest.mark.parametrize("text", [CIFAR10_CELL, CIFAR100_CELL, "0314 0023 0004 0000"])
def test_genotype_round_trips(text):
    g = CellGenotype.from_string(text)
    assert g.to_string() == text
    assert eval(repr(g), {"CellGenotype": CellGenotype}) == g
    assert CellGenotype.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    assert CellGenotype.from_edges(g.edges()) == g
    assert CellGenotype.from_edges([str(e) for e in g.edges()]) == g
    assert CellGenotype.from_string(text.split()) == g           # argparse nargs=4
    assert CellGenotype(np.array(g.matrix)) == g == CellGenotype(torch.tensor(g.matrix))
    assert hash(g) == hash(CellGenotype.from_string(text))


def test_released_cifar10_cell_reads_as_the_brief_says():
    g = CellGenotype.from_string(CIFAR10_CELL)
    assert [str(e) for e in g.edges()] == [
        "0->1 spike_conv_3x3", "1->2 spike_conv_3x3", "0->3 spike_conv_3x3",
        "2->3 spike_conv_1x1", "2->0 spike_conv_1x1 (backward)", "3->1 spike_conv_1x1 (backward)"]
    assert g.is_backward and g.connected and g.pruned() == g
    assert Edge(2, 0, "skip_connect").direction == "backward"
    assert not CellGenotype.from_string("0303 0030 0002 0000").is_backward


@pytest.mark.parametrize("matrix, message", [
    (((0, 1, 0), (0, 0, 1), (0, 0, 0)), "4x4"),
    (((0, 1, 0, 1),) * 3 + ((0, 0, 0),), "4x4"),
    (((1, 0, 0, 1), (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0)), "diagonal"),
    (((0, 0, 0, 5), (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0)), "not an op code"),
    (((0, 0, 0, -1), (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0)), "not an op code"),
    (((0, 0, 0, 1.0), (0, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0)), "int op code"),
    (((0, 3, 0, 1), (2, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0)), "both a forward edge 0->1"),
    ("0303 0030 2002 0200", "4x4"),
])
def test_malformed_matrices_raise(matrix, message):
    with pytest.raises(ValueError, match=message):
        CellGenotype(matrix)


def test_bad_text_and_dicts_raise():
    for text in ["0303 0030 2002", "03a3 0030 2002 0200", "03030 0030 2002 0200"]:
        with pytest.raises(ValueError, match="4 rows of 4 digits"):
            CellGenotype.from_string(text)
    with pytest.raises(TypeError, match="str like"):
        CellGenotype.from_string(303)
    with pytest.raises(ValueError, match="ops\\[0\\] must be 'none'"):
        CellGenotype.from_string("0101 0000 0000 0000", ops=("skip_connect", "none"))
    with pytest.raises(ValueError, match="disagree"):
        CellGenotype.from_dict({"matrix": [[0, 0, 0, 1]] + [[0] * 4] * 3,
                                "edges": ["0->3 avg_pool_3x3"]})
    with pytest.raises(ValueError, match="says forward"):
        CellGenotype.from_edges(["2->0 skip_connect (forward)"])
    with pytest.raises(ValueError, match="not in ops"):
        CellGenotype.from_edges([(0, 3, "conv_7x7")])
    with pytest.raises(ValueError, match="given twice"):
        CellGenotype.from_edges([(0, 3, "skip_connect"), (0, 3, "avg_pool_3x3")])
    with pytest.raises(ValueError, match="to_dict"):
        CellGenotype.from_dict({"genotype": CIFAR10_CELL})


# ---- validity and pruning -----------------------------------------------------------

@pytest.mark.parametrize("text, pruned", [
    ("0303 0000 0000 0000", "0003 0000 0000 0000"),      # node 1 never reaches the output
    ("0001 0000 0001 0000", "0001 0000 0000 0000"),      # node 2 is never reached from the input
    ("0100 0000 0000 0100", "0000 0000 0000 0000"),      # input never reaches 3
    ("0112 0003 0000 0000", "0102 0003 0000 0000"),      # node 2 is a dead end: no out-edge
    ("0010 0001 0100 0000", "0010 0001 0100 0000"),      # a path through feedback (2->1) is kept
    ("0001 0000 0100 0010", "0001 0000 0000 0000"),      # 1, 2 only get feedback from 3
])
def test_pruning_by_hand(text, pruned):
    g = CellGenotype.from_string(text)
    assert g.pruned().to_string() == pruned
    assert g.pruned().pruned() == g.pruned()


def _official_prune(matrix):
    """The official rule (model_snn.py L30-43) restated: walk counts A + A^2 + A^3 + A^4 with
    the op codes as weights, computed once; zero the nodes 0-2 that do not reach node 3,
    then the nodes 1-3 that node 0 does not reach, without recomputing."""
    a = np.array(matrix, dtype=np.int64)
    graph = a + a @ a + a @ a @ a + a @ a @ a @ a
    out = a.copy()
    for node in range(3):
        if graph[node, 3] == 0:
            out[:, node] = out[node, :] = 0
    for node in range(1, 4):
        if graph[0, node] == 0:
            out[:, node] = out[node, :] = 0
    return tuple(map(tuple, out.tolist()))


def test_pruning_agrees_with_the_official_rule_on_every_fw_matrix_and_random_bw_ones():
    space = SNASNetSpace("fw", require_input_output_edge=False)
    for g in space.enumerate():
        assert g.pruned().matrix == _official_prune(g.matrix), g
    rng = random.Random(0)
    for _ in range(3000):                      # random Bw matrices, one direction per pair
        rows = [[0] * 4 for _ in range(4)]
        for i, j in [(0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3)]:
            code, backward = rng.randrange(5), rng.randrange(2)
            rows[j if backward else i][i if backward else j] = code
        g = CellGenotype(rows)
        assert g.pruned().matrix == _official_prune(g.matrix), g


def test_validate_rules():
    fw, bw = SNASNetSpace("fw"), SNASNetSpace("bw")
    cell = CellGenotype.from_string(CIFAR10_CELL)
    assert bw.validate(cell) is cell
    with pytest.raises(ValueError, match="forward edges only"):
        fw.validate(cell)
    with pytest.raises(ValueError, match="no 0->3 edge"):
        bw.validate(CellGenotype.from_string("0010 0001 0100 0000"))
    assert SNASNetSpace("bw", require_input_output_edge=False).validate(
        CellGenotype.from_string("0010 0001 0100 0000"))
    with pytest.raises(ValueError, match="never reaches the output"):
        SNASNetSpace("fw", require_input_output_edge=False).validate(
            CellGenotype.from_string("0100 0000 0000 0000"))
    with pytest.raises(ValueError, match="ops=space.ops"):
        fw.validate(CellGenotype.from_string("0001 0000 0000 0000", ops=("none", "skip_connect")))
    with pytest.raises(TypeError, match="from_string"):
        fw.validate(CIFAR10_CELL)
    with pytest.raises(ValueError, match="kind must be one of"):
        SNASNetSpace("forward")
    with pytest.raises(ValueError, match="unknown op"):
        SNASNetSpace("fw", ops=SNASNET_OPS + ("conv_7x7",))


# ---- spaces: size, enumerate, sample, mutate -----------------------------------------

def test_space_sizes_and_enumeration():
    full = SNASNetSpace("fw", require_input_output_edge=False)
    assert full.size == 5 ** 6 == 15_625
    cells = list(full.enumerate())
    assert len(cells) == len(set(cells)) == 15_625
    assert not any(g.is_backward for g in cells)
    assert sum(not g.connected for g in cells) > 0               # the paper's count includes them
    fw = SNASNetSpace("fw")
    assert fw.size == 4 * 5 ** 5 == len(list(fw.enumerate()))
    assert all(g.matrix[0][3] for g in fw.enumerate())
    assert SNASNetSpace("bw", require_input_output_edge=False).size == 9 ** 6
    assert SNASNetSpace("bw").size == 4 * 9 ** 5
    first = list(zip(range(500), SNASNetSpace("bw").enumerate()))
    assert all(SNASNetSpace("bw").validate(g) for _, g in first)


@pytest.mark.parametrize("kind", ["fw", "bw"])
@pytest.mark.parametrize("require", [True, False])
def test_sampling_is_seeded_valid_and_pruned(kind, require):
    space = SNASNetSpace(kind, require_input_output_edge=require)
    draws = [space.sample(random.Random(7)) for _ in range(2)]
    assert draws[0] == draws[1]
    rng = random.Random(0)
    cells = [space.sample(rng) for _ in range(300)]
    for g in cells:
        assert space.validate(g) is g and g.pruned() == g
    assert len(set(cells)) > 100
    assert any(g.is_backward for g in cells) == (kind == "bw")
    if require:
        assert all(g.matrix[0][3] for g in cells)
    else:
        assert any(not g.matrix[0][3] for g in cells)
    with pytest.raises(TypeError, match="random.Random"):
        space.sample(0)


def test_mutation_is_a_valid_seeded_neighbour():
    space = SNASNetSpace("bw")
    rng = random.Random(1)
    for _ in range(200):
        parent = space.sample(rng)
        child = space.mutate(parent, rng)
        assert child != parent and space.validate(child) is child and child.pruned() == child
    g = CellGenotype.from_string(CIFAR10_CELL)
    assert space.mutate(g, random.Random(3)) == space.mutate(g, random.Random(3))
    with pytest.raises(ValueError, match="forward edges only"):
        SNASNetSpace("fw").mutate(g, random.Random(0))


# ---- the cell: time semantics ----------------------------------------------------------

def test_backward_edge_delays_by_exactly_one_step():
    # 0->2 skip, 2->1 skip (backward), 1->3 skip: node 1 holds node 2 of the previous step
    delay = SNASNetCell(CellGenotype.from_string("0010 0001 0100 0000"), C=1)
    x = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]).reshape(5, 1, 1, 1, 1)
    assert delay(x).flatten().tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    # 0->1, 1->2, 2->3, 0->3 skip and 3->1 skip (backward): y[t] = 2 x[t] + y[t-1]
    loop = SNASNetCell(CellGenotype.from_string("0101 0010 0001 0100"), C=1)
    x = torch.tensor([1.0, 0.0, 0.0, 3.0]).reshape(4, 1, 1, 1, 1)
    assert loop(x).flatten().tolist() == [2.0, 2.0, 2.0, 8.0]
    assert loop(x).flatten().tolist() == [2.0, 2.0, 2.0, 8.0]     # feedback restarts at zero


def test_backward_cell_follows_the_official_equations():
    # forward 0->1 conv3x3, 1->2 avgpool, 0->3 skip, 2->3 conv1x1; backward 2->0 conv1x1, 3->1 skip
    g = CellGenotype.from_string("0301 0040 2002 0100")
    cell = SNASNetCell(g, C=3).eval()
    x = _seq(4, 2, 3, 5, 5, scale=3.0)
    states = {key: {} for key in cell.edges}

    def op(src, dst, value):                # official search_cell_snn.py L128-137, zero edges = 0
        key = f"{src}to{dst}"
        return cell.edges[key].step(value, states[key]) if key in cell.edges else 0

    fb0 = fb1 = fb2 = 0
    expected = []
    for t in range(4):
        x0 = x[t]
        x1 = op(0, 1, x0 + fb0)
        x2 = op(0, 2, x0 + fb0) + op(1, 2, x1 + fb1)
        x3 = op(0, 3, x0 + fb0) + op(1, 3, x1 + fb1) + op(2, 3, x2 + fb2)
        fb0, fb1, fb2 = (op(1, 0, x1 + fb1) + op(2, 0, x2 + fb2) + op(3, 0, x3),
                         op(2, 1, x2 + fb2) + op(3, 1, x3), op(3, 2, x3))
        expected.append(x3)
    torch.testing.assert_close(cell(x), torch.stack(expected), rtol=1e-6, atol=1e-6)
    assert sum(state["lif"].abs().sum() for state in states.values() if state) > 0


def test_feedback_ops_run_every_step_and_hooks_see_each_step():
    cell = SNASNetCell(CellGenotype.from_string(CIFAR10_CELL), C=2)
    calls = {}
    for name, m in cell.named_modules():
        if isinstance(m, LIF):
            m.register_forward_hook(lambda mod, a, out, n=name: calls.setdefault(n, []).append(
                tuple(out[0].shape)))
    cell(_seq(5, 3, 2, 4, 4))
    assert sorted(calls) == ["edges.0to1.lif", "edges.0to3.lif", "edges.1to2.lif",
                             "edges.2to0.lif", "edges.2to3.lif", "edges.3to1.lif"]
    assert all(shapes == [(1, 3, 2, 4, 4)] * 5 for shapes in calls.values())


def test_forward_cell_multi_step_equals_step_by_step_in_eval_mode():
    cell = SNASNetCell(CellGenotype.from_string("0314 0023 0004 0000"), C=3)   # every op type
    x = _seq(5, 4, 3, 6, 6, scale=3.0)
    spikes = []
    for m in cell.modules():
        if isinstance(m, LIF):
            m.register_forward_hook(lambda mod, a, out: spikes.append(
                (out[0] if isinstance(out, tuple) else out).sum().item()))
    cell.eval()
    torch.testing.assert_close(cell(x), cell.forward_steps(x), rtol=1e-5, atol=1e-5)
    assert sum(spikes) > 0
    # train mode: the multi-step path normalises over the merged T*B batch, the per-step
    # path over each step's B samples (as the official single-step code), so they differ
    cell.train()
    assert not torch.allclose(cell(x), cell.forward_steps(x), atol=1e-3)


def test_cell_errors():
    with pytest.raises(ValueError, match="never reaches the output"):
        SNASNetCell(CellGenotype.from_string("0100 0000 0000 0100"), C=2)
    with pytest.raises(TypeError, match="CellGenotype"):
        SNASNetCell(CIFAR10_CELL, C=2)
    cell = SNASNetCell(CellGenotype.from_string(CIFAR10_CELL), C=2)
    with pytest.raises(ValueError, match=r"\[T, B, C=2, H, W\]"):
        cell(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match=r"C=2"):
        cell(torch.zeros(2, 1, 3, 4, 4))


# ---- the macro network --------------------------------------------------------------

@pytest.mark.parametrize("text", [CIFAR10_CELL, CIFAR100_CELL, "0303 0030 0002 0000"])
def test_digits_shapes_and_gradients(text):
    model = build_snasnet(CellGenotype.from_string(text), get_profile("tiny"), DIGITS)
    x = _seq(6, 1, 8, 8)
    logits = model(x)
    assert logits.shape == (6, 10)
    assert model(direct(x, 3)).shape == (6, 10)
    logits.sum().backward()
    assert model.stem[0].weight.grad.abs().sum() > 0
    assert model.cell1.edges["0to1"].conv.module.weight.grad is not None


def test_cifar_shapes():
    model = SNASNet(CellGenotype.from_string(CIFAR10_CELL), in_channels=3, num_classes=10, C=8,
                    T=2, image_size=32, fc_hidden=16, votes_per_class=2, last_pool=4)
    assert model(_seq(2, 3, 32, 32)).shape == (2, 10)
    assert model.classifier[1].module.in_features == 16 * 4 * 4


def test_paper_profile_matches_the_official_cifar10_model_size():
    cifar10 = SimpleNamespace(in_channels=3, num_classes=10, image_size=32)
    model = build_snasnet(CellGenotype.from_string(CIFAR10_CELL), get_profile("paper"), cifar10)
    # 19.52 M parameters, computed from the official code (research brief §1.2)
    assert sum(p.numel() for p in model.parameters()) == pytest.approx(19.52e6, rel=1e-3)


def test_direct_encoding_static_and_sequence_inputs_agree_in_eval_mode():
    model = build_snasnet(CellGenotype.from_string(CIFAR10_CELL), get_profile("tiny"), DIGITS)
    model.eval()
    x = _seq(5, 1, 8, 8, scale=2.0)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(direct(x, model.T)), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(model(x), model(x))                 # no state between calls


def test_voting_averages_groups_of_outputs_and_time():
    model = SNASNet(CellGenotype.from_string("0001 0000 0000 0000"), in_channels=1,
                    num_classes=3, C=2, T=2, image_size=8, fc_hidden=4, votes_per_class=2)
    readout = model.classifier[-1].module
    with torch.no_grad():
        readout.weight.zero_()
        readout.bias.copy_(torch.arange(6.0))
    assert model(_seq(2, 1, 8, 8))[0].tolist() == [0.5, 2.5, 4.5]


def test_neurons_init_and_dropout():
    g = CellGenotype.from_string(CIFAR10_CELL)
    model = build_snasnet(g, get_profile("tiny"), DIGITS)
    lifs = [m for m in model.modules() if isinstance(m, LIF)]
    assert len(lifs) == 2 * 6 + 3                      # 6 spiking edges per cell, down, last, fc
    for lif in lifs:
        assert lif.tau.item() == pytest.approx(4 / 3) and lif.decay_input
        assert lif.threshold.item() == 1.0 and lif.reset == "hard" and lif.detach_reset
    assert dict(SNASNET_NEURON)["surrogate"] == "atan"
    other = build_snasnet(g, get_profile("tiny"), DIGITS, neuron={"threshold": 0.5})
    assert all(m.threshold.item() == 0.5 for m in other.modules() if isinstance(m, LIF))
    # official init (model_snn.py L205-217)
    fc = model.classifier[1].module.weight
    assert abs(fc.std().item() - 0.01) < 2e-3
    conv = model.down[2].module.weight
    bound = math.sqrt(2 / (1 + 2 ** 2)) * math.sqrt(3 / conv[0].numel())
    assert conv.abs().max() <= bound and conv.abs().max() > 0.9 * bound
    assert all(bn.weight.eq(1).all() for bn in model.modules() if isinstance(bn, nn.BatchNorm2d))
    # dropout: one mask per sequence, identity in eval mode
    drop = SequenceDropout(0.5)
    y = drop(torch.ones(4, 3, 50))
    assert torch.equal(y[0], y[3]) and set(y.unique().tolist()) == {0.0, 2.0}
    assert torch.equal(drop.eval()(torch.ones(4, 3, 50)), torch.ones(4, 3, 50))


def test_model_errors():
    g = CellGenotype.from_string(CIFAR10_CELL)
    model = build_snasnet(g, get_profile("tiny"), DIGITS)
    with pytest.raises(ValueError, match=r"\(1, 8, 8\)"):
        model(torch.zeros(2, 3, 32, 32))
    with pytest.raises(ValueError, match=r"\[B, C, H, W\] or a sequence"):
        model(torch.zeros(8, 8))
    with pytest.raises(ValueError, match="T must be a positive int"):
        SNASNet(g, 1, 10, C=4, T=0, image_size=8)
    with pytest.raises(ValueError, match="too small"):
        SNASNet(g, 1, 10, C=4, T=2, image_size=8, last_pool=8)
    with pytest.raises(TypeError, match="from_string"):
        build_snasnet(CIFAR10_CELL, get_profile("tiny"), DIGITS)
    with pytest.raises(ValueError, match="never reaches"):
        SNASNet(CellGenotype.from_string("0100 0000 0000 0000"), 1, 10, C=4, T=2, image_size=8)


# ---- a user-registered candidate, end to end ---------------------------------------------

class SpikeMaxPool(nn.Module):
    """A user op written from scratch: LIF -> 3x3 max pool, with its own step."""

    def __init__(self, neuron):
        super().__init__()
        self.lif = LIF(**neuron)
        self.pool = TimeDistributed(nn.MaxPool2d(3, 1, 1))

    def forward(self, x_seq):
        return self.pool(self.lif(x_seq))

    def step(self, x_t, state):
        return self.pool.module(step_neuron(self.lif, x_t, state, "lif"))


def test_user_registered_op_end_to_end(registry):
    # not spike_conv_3x3_th05: snnlab.bench registers that name once imported (by test_bench)
    @register_op("spike_conv_3x3_half")
    def _conv(C, stride, neuron):                 # a spiking conv3x3 with its own threshold
        return SpikeConvBN(C, 3, stride, {**neuron, "threshold": 0.5})

    @register_op("spike_max_pool_3x3")
    def _pool(C, stride, neuron):
        return SpikeMaxPool(neuron)

    ops = SNASNET_OPS + ("spike_conv_3x3_half", "spike_max_pool_3x3")
    space = SNASNetSpace("bw", ops=ops)
    assert space.size == 6 * 13 ** 5
    rng = random.Random(0)
    sampled = [space.sample(rng) for _ in range(100)]
    assert any(e.op == "spike_conv_3x3_half" for g in sampled for e in g.edges())
    g = CellGenotype.from_edges(["0->1 skip_connect", "1->2 spike_max_pool_3x3",
                                 "0->3 spike_conv_3x3_half", "2->3 spike_conv_1x1",
                                 "3->1 spike_conv_3x3_half (backward)"], ops=ops)
    assert space.validate(g) is g and space.validate(space.mutate(g, rng))
    assert CellGenotype.from_dict(json.loads(json.dumps(g.to_dict()))) == g
    assert eval(repr(g), {"CellGenotype": CellGenotype}) == g
    model = SNASNet(g, in_channels=1, num_classes=10, C=4, T=3, image_size=8, fc_hidden=16,
                    votes_per_class=2)
    model(_seq(5, 1, 8, 8, scale=2.0)).sum().backward()
    assert model.cell1.edges["3to1"].lif.threshold.item() == 0.5
    assert model.cell2.edges["0to3"].lif.threshold.item() == 0.5
    assert model.cell1.edges["1to2"].lif.threshold.item() == 1.0


def test_user_spiking_op_without_step_is_refused_in_backward_cells_only(registry):
    @register_op("lif_no_step")
    def _op(C, stride, neuron):
        return nn.Sequential(LIF(**neuron), TimeDistributed(nn.Conv2d(C, C, 1)))

    ops = SNASNET_OPS + ("lif_no_step",)
    forward_only = CellGenotype.from_edges(["0->3 lif_no_step", "0->1 skip_connect",
                                            "1->3 lif_no_step"], ops=ops)
    assert SNASNetCell(forward_only, C=2)(_seq(3, 2, 2, 4, 4)).shape == (3, 2, 2, 4, 4)
    with_feedback = CellGenotype.from_edges(["0->3 lif_no_step", "0->1 skip_connect",
                                             "3->1 skip_connect"], ops=ops)
    with pytest.raises(TypeError, match="defines no step"):
        SNASNetCell(with_feedback, C=2)


# ---- SpikeNAS-Bench's networks: per-step BN, no LIF in the down block ----------------

def _macro(genotype, **kwargs):
    torch.manual_seed(0)
    return SNASNet(genotype, in_channels=3, num_classes=10, C=4, T=3, image_size=8,
                   fc_hidden=16, votes_per_class=2, **kwargs)


CELL = CellGenotype.from_string("0303 0030 0003 0000")       # forward 3x3 convs only


def test_defaults_are_unchanged_and_switches_share_weights():
    default = _macro(CELL)
    assert (default.bn_stats, default.down_spike) == ("pooled", True)
    assert isinstance(default.down[1], LIF)
    per_step = _macro(CELL, bn_stats="per_step")
    assert default.state_dict().keys() == per_step.state_dict().keys()
    no_spike = _macro(CELL, down_spike=False)
    assert not any(isinstance(m, LIF) for m in no_spike.down)
    assert sum(isinstance(m, LIF) for m in no_spike.modules()) == \
        sum(isinstance(m, LIF) for m in default.modules()) - 1


def test_per_step_bn_equals_pooled_in_eval_mode_and_for_one_step():
    x = torch.randn(6, 3, 8, 8)
    pooled, per_step = _macro(CELL), _macro(CELL, bn_stats="per_step")
    per_step.load_state_dict(pooled.state_dict())
    pooled.eval(), per_step.eval()                     # running statistics: same normalisation
    torch.testing.assert_close(per_step(x), pooled(x))
    torch.manual_seed(0)
    one = SNASNet(CELL, 3, 10, C=4, T=1, image_size=8, fc_hidden=16, votes_per_class=2, dropout=0)
    one_step = SNASNet(CELL, 3, 10, C=4, T=1, image_size=8, fc_hidden=16, votes_per_class=2,
                       dropout=0, bn_stats="per_step")
    one_step.load_state_dict(one.state_dict())        # train mode: T = 1 pools one step
    torch.testing.assert_close(one_step(x), one(x))


def test_per_step_bn_normalises_each_step_in_train_mode():
    model = _macro(CELL, bn_stats="per_step", dropout=0.0)
    seen = []
    model.last_act[0].module.register_forward_hook(lambda m, a, out: seen.append(out))
    model.train()
    model(torch.randn(6, 3, 8, 8))
    assert len(seen) == 3                              # one BN call per time step
    for out in seen:                                   # each step: mean 0, var 1 per channel
        torch.testing.assert_close(out.mean((0, 2, 3)), torch.zeros(8), atol=1e-5, rtol=0)


def test_macro_switches_are_checked():
    with pytest.raises(ValueError, match="bn_stats"):
        _macro(CELL, bn_stats="time")
    with pytest.raises(TypeError, match="down_spike"):
        _macro(CELL, down_spike="no")
