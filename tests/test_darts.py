"""Spiking DARTS: ops, supernet, architect (first/second order, HVP), search loop, discrete net."""
import dataclasses
import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from snnlab.architect import Architect, exact_hvp, finite_difference_hvp
from snnlab.attention import get_attention
from snnlab.darts import (DARTS_SNN_OPS, DiscreteNetwork, FactorizedReduce, MixedOp,
                          SearchNetwork, build_darts_network, cell_key, drop_path, lif_view)
from snnlab.darts_search import (DartsConfig, darts_search, load_search_checkpoint,
                                 load_search_result, make_search_loaders, measure_cells,
                                 run_darts_search)
from snnlab.genotypes import DARTS_V2, Genotype, num_edges
from snnlab.monitor import SpikeMonitor
from snnlab.neurons import LIF
from snnlab.profiles import get_profile
from snnlab.train import TrainConfig, evaluate, fit

GENOTYPE = Genotype(
    normal=(("conv_3x3", 0), ("skip_connect", 1), ("max_pool_3x3", 2), ("conv_1x1", 1),
            ("avg_pool_3x3", 3), ("conv_5x5", 0), ("skip_connect", 4), ("conv_3x3", 2)),
    normal_concat=(2, 3, 4, 5),
    reduce=(("max_pool_3x3", 0), ("skip_connect", 1), ("conv_3x3", 2), ("skip_connect", 0),
            ("conv_1x1", 3), ("avg_pool_3x3", 1), ("conv_5x5", 4), ("skip_connect", 2)),
    reduce_concat=(2, 3, 4, 5))


def small_net(**kw):
    torch.manual_seed(0)
    args = dict(C=2, num_classes=3, layers=3, T=2, in_channels=1, image_size=8)
    return SearchNetwork(**{**args, **kw})


def batch(n=6, seed=0, classes=3):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 1, 8, 8, generator=g) * 2, torch.randint(0, classes, (n,), generator=g)


def data(n=24):
    x, y = batch(n, seed=1)
    return TensorDataset(x, y)


def config(**kw):
    args = dict(epochs=3, layers=3, C=2, T=2, batch_size=6, lr=0.1, arch_lr=3e-2)
    return DartsConfig(**{**args, **kw})


# ---- ops and the supernet ----------------------------------------------------------------

@pytest.mark.parametrize("stride", [1, 2])
def test_mixed_op_with_one_hot_weights_is_that_op(stride):
    torch.manual_seed(0)
    mixed = MixedOp(3, stride, DARTS_SNN_OPS, {})
    x = (torch.rand(2, 4, 3, 7, 7) > 0.5).float()                     # spikes, odd size
    for k, name in enumerate(DARTS_SNN_OPS):
        one_hot = F.one_hot(torch.tensor(k), len(DARTS_SNN_OPS)).float()
        expected = mixed.ops[k](x)                                    # zeros for "none"
        torch.testing.assert_close(mixed(x, one_hot), expected, rtol=0, atol=0)
        assert expected.shape[-2:] == ((7, 7) if stride == 1 else (4, 4))
    skip = mixed.ops[DARTS_SNN_OPS.index("skip_connect")]
    assert isinstance(skip, FactorizedReduce) == (stride == 2)


def test_factorized_reduce_reads_even_and_odd_pixels():
    torch.manual_seed(0)
    fr = FactorizedReduce(1, 2)
    x = torch.rand(1, 3, 1, 4, 4, requires_grad=True)
    y = fr(x)
    assert y.shape == (1, 3, 2, 2, 2)
    (y * torch.randn_like(y)).sum().backward()
    read = (x.grad != 0)[0, 0, 0]
    assert read[0::2, 0::2].all() and read[1::2, 1::2].all()         # both phases are read
    assert not read[0::2, 1::2].any()                                  # DARTS's design
    assert fr(torch.rand(1, 3, 1, 5, 5)).shape == (1, 3, 2, 3, 3)     # odd sizes work


def test_arch_and_weight_parameters_are_disjoint_and_saved():
    net = small_net()
    arch = {id(p) for p in net.arch_parameters()}
    weights = {id(p) for p in net.weight_parameters()}
    assert not arch & weights and arch | weights == {id(p) for p in net.parameters()}
    assert net.alphas_normal.shape == (num_edges(4), len(DARTS_SNN_OPS))
    assert {"alphas_normal", "alphas_reduce"} <= set(net.state_dict())
    x, _ = batch()
    assert net(x).shape == (6, 3)
    assert net.genotype().normal_concat == (2, 3, 4, 5)


def test_search_bn_uses_batch_statistics_without_affine():
    net = small_net()
    bns = [m for cell in net.cells for m in cell.modules() if isinstance(m, nn.BatchNorm2d)]
    assert bns and all(not bn.affine and not bn.track_running_stats for bn in bns)
    x, _ = batch()
    net.train()
    out_train = net(x)
    net.eval()
    torch.testing.assert_close(net(x), out_train)                   # eval = batch stats too


def test_every_node_state_is_binary_and_lifs_live_in_cells():
    net = small_net()
    seen = []
    for name, m in net.named_modules():
        if isinstance(m, LIF):
            assert cell_key(name).startswith("cells.")
            m.register_forward_hook(lambda mod, args, out: seen.append(out))
    net(batch()[0])
    assert len(seen) == 3 * 6 and all(((s == 0) | (s == 1)).all() for s in seen)


def test_nos_per_cell_sums_to_the_model_nos():
    for model in (small_net(), DiscreteNetwork(GENOTYPE, C=2, num_classes=3, layers=3, T=2,
                                               in_channels=1, image_size=8)):
        loader = torch.utils.data.DataLoader(data(12), batch_size=6)
        result = measure_cells(model, loader, "cpu")
        with SpikeMonitor(model) as mon:                          # every LIF and synapse
            model.eval()
            with torch.no_grad():
                for x, _ in loader:
                    model(x)
        total = mon.summary().nos_per_image
        assert list(result["nos_per_cell"]) == ["cells.0", "cells.1", "cells.2"]
        assert total > 0
        assert result["nos"] == pytest.approx(total, rel=1e-9)
        assert sum(result["nos_per_cell"].values()) == pytest.approx(total, rel=1e-9)
    assert len(lif_view(model).cells) == 3


def test_unknown_ops_and_bad_genotypes_fail_clearly():
    with pytest.raises(ValueError, match=r"unknown op\(s\) \['conv_9x9'\]"):
        small_net(ops=("none", "conv_9x9"))
    bad = dataclasses.replace(GENOTYPE, normal=(("conv_9x9", 0), ("conv_3x3", 1)) * 4)
    with pytest.raises(ValueError, match="unregistered op.*conv_9x9.*register_op"):
        DiscreteNetwork(bad, C=2, layers=3, in_channels=1, image_size=8)
    with pytest.raises(TypeError, match="Genotype.from_dict"):
        DiscreteNetwork(GENOTYPE.to_dict(), C=2)
    with pytest.raises(ValueError, match="attention_placement|placement"):
        small_net(attention=get_attention("eca"), attention_placement="everywhere")
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        small_net()(torch.rand(2, 3, 8, 8))


@pytest.mark.parametrize("placement", ["cell_output", "node_input"])
def test_attention_hooks_keep_shapes(placement):
    net = small_net(attention=get_attention("eca"), attention_placement=placement)
    cell = net.cells[0]
    if placement == "cell_output":
        assert cell.attention is not None and cell.node_attention is None
    else:
        assert cell.attention is None and len(cell.node_attention) == 4
    assert net(batch()[0]).shape == (6, 3)
    disc = DiscreteNetwork(GENOTYPE, C=2, num_classes=3, layers=3, in_channels=1, image_size=8,
                           attention=get_attention("cbam"), attention_placement=placement)
    assert disc(batch()[0]).shape == (6, 3)


def test_darts_minus_auxiliary_skip_changes_the_output():
    net = small_net(auxiliary_skip=True)
    x, _ = batch()
    before = net(x)
    net.set_aux_skip(0.5)
    assert not torch.allclose(net(x), before)
    net.set_aux_skip(0.0)
    torch.testing.assert_close(net(x), before)
    with pytest.raises(ValueError, match="auxiliary_skip=True"):
        small_net().set_aux_skip(0.5)                    # built without the aux path


@pytest.mark.parametrize("stride", [1, 2])
def test_darts_minus_aux_path_on_every_edge(stride):
    torch.manual_seed(0)
    mixed = MixedOp(4, stride, DARTS_SNN_OPS, {}, auxiliary_skip=True)
    x = (torch.rand(2, 3, 4, 7, 7) > 0.5).float()                     # spikes, odd size
    w = F.softmax(torch.randn(len(DARTS_SNN_OPS)), dim=-1)
    plain = mixed(x, w)
    aux = mixed.aux(x)
    assert aux.shape == plain.shape == ((2, 3, 4, 7, 7) if stride == 1 else (2, 3, 4, 4, 4))
    if stride == 1:
        torch.testing.assert_close(aux, x, rtol=0, atol=0)             # identity
    else:
        assert isinstance(mixed.aux, FactorizedReduce)
        bn = mixed.aux.bn                                               # affine-free, batch stats
        assert not bn.affine and bn.weight is None and not bn.track_running_stats
        assert all(p.requires_grad for p in mixed.aux.parameters())    # convs are weights
    torch.testing.assert_close(mixed(x, w, 0.3), plain + 0.3 * aux)    # scaled by beta
    torch.testing.assert_close(mixed(x, w, 0.0), plain, rtol=0, atol=0)
    # beta = 0 is the plain MixedOp: same ops, same output, no aux path
    torch.manual_seed(0)
    torch.testing.assert_close(MixedOp(4, stride, DARTS_SNN_OPS, {})(x, w), plain)
    with pytest.raises(ValueError, match="auxiliary_skip=True"):
        MixedOp(4, stride, DARTS_SNN_OPS, {})(x, w, 0.3)


def test_aux_path_stays_affine_free_in_an_affine_supernet():
    net = small_net(auxiliary_skip=True, affine=True)
    reduction = net.cells[1]
    assert reduction.reduction and reduction.strides[0] == 2
    assert not reduction.edges[0].aux.bn.affine
    assert any(isinstance(m, torch.nn.BatchNorm2d) and m.affine for m in reduction.edges[0].ops.modules())
    plain = small_net()
    assert all(e.aux is None for c in plain.cells for e in c.edges)   # default: no extra params
    with_aux = small_net(auxiliary_skip=True)
    extra = sum(p.numel() for p in with_aux.parameters()) - sum(p.numel() for p in plain.parameters())
    assert all(isinstance(e.aux, FactorizedReduce) == (stride == 2)
               for c in with_aux.cells for e, stride in zip(c.edges, c.strides))
    # the only extra parameters: the 1x1 convs of the stride-2 aux paths (BN affine-free)
    assert extra == sum(p.numel() for c in with_aux.cells for e in c.edges
                        for p in e.aux.parameters()) > 0
    loaders = make_search_loaders(data(12), batch_size=6)
    with pytest.raises(ValueError, match="auxiliary path"):
        darts_search(plain, loaders.train, loaders.val, config(aux_skip=0.5), "cpu",
                     progress=False)


# ---- the architect ---------------------------------------------------------------------------

def test_finite_difference_hvp_matches_double_backward(smooth_supernet):
    torch.manual_seed(0)
    model = smooth_supernet(rows=2)
    data_ = (torch.randn(16, 5, dtype=torch.float64), torch.randint(0, 4, (16,)))
    v = [torch.randn_like(p) for p in model.weight_parameters()]
    exact = exact_hvp(model, F.cross_entropy, data_, v)
    approx = finite_difference_hvp(model, F.cross_entropy, data_, v)
    assert exact[0].abs().max() > 1e-3                                 # a non-trivial product
    torch.testing.assert_close(approx[0], exact[0], rtol=1e-4, atol=1e-6)
    # the classic bug (p - n) / 2.*eps = ((p - n) / 2) * eps is far off
    eps = 0.01 / torch.sqrt(sum((t ** 2).sum() for t in v)).item()
    buggy = approx[0] * (2 * eps) / 2 * eps
    assert not torch.allclose(buggy, exact[0], rtol=1e-2)
    weights = [p.clone() for p in model.weight_parameters()]
    assert all(torch.equal(a, b) for a, b in zip(weights, model.weight_parameters()))


def stepped_optimizer(net, x, y, lr=0.1):
    """An SGD optimizer with momentum buffers (one real step taken), as mid-search."""
    opt = torch.optim.SGD(net.weight_parameters(), lr=lr, momentum=0.9, weight_decay=3e-4)
    F.cross_entropy(net(x), y).backward(inputs=net.weight_parameters())
    opt.step()
    opt.zero_grad()
    return opt


def test_virtual_step_is_the_next_sgd_step():
    net = small_net()
    x, y = batch()
    opt = stepped_optimizer(net, x, y)
    architect = Architect(net, order=2)
    virtual = architect.virtual_step((x, y), opt, xi=0.1)
    F.cross_entropy(net(x), y).backward(inputs=net.weight_parameters())
    opt.step()                                                         # the real step
    for name, p in net.named_weight_parameters():
        torch.testing.assert_close(virtual[name], p.detach(), rtol=1e-5, atol=1e-7)


def test_second_order_with_xi_zero_equals_first_order():
    net = small_net()
    x, y = batch()
    xv, yv = batch(seed=5)
    opt = stepped_optimizer(net, x, y)
    first, loss1 = Architect(net, order=1).arch_grads((x, y), (xv, yv), opt)
    second, loss2 = Architect(net, order=2, xi=0.0).arch_grads((x, y), (xv, yv), opt)
    for a, b in zip(first, second):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(loss1, loss2)
    third, _ = Architect(net, order=2, xi=0.1).arch_grads((x, y), (xv, yv), opt)
    assert all(torch.isfinite(t).all() for t in third)
    assert not torch.allclose(third[0], first[0])


def test_each_optimizer_only_sees_its_own_parameters(monkeypatch):
    seen = {}
    real_sgd = torch.optim.SGD

    class SpySGD(real_sgd):
        def __init__(self, params, *args, **kwargs):
            params = list(params)
            seen["sgd"] = {id(p) for p in params}
            super().__init__(params, *args, **kwargs)

    monkeypatch.setattr(torch.optim, "SGD", SpySGD)
    net = small_net()
    loaders = make_search_loaders(data(12), batch_size=6)
    alphas_before = [a.detach().clone() for a in net.arch_parameters()]
    darts_search(net, loaders.train, loaders.val, config(epochs=1, arch_warmup=1), "cpu",
                 progress=False)
    arch = {id(a) for a in net.arch_parameters()}
    assert seen["sgd"] == {id(p) for p in net.weight_parameters()} and not seen["sgd"] & arch
    # with the alpha steps held back (warm-up), the weight steps never move an alpha
    assert all(torch.equal(a, b) for a, b in zip(alphas_before, net.arch_parameters()))
    assert all(a.grad is None for a in net.arch_parameters())
    architect = Architect(net)
    assert {id(p) for g in architect.optimizer.param_groups for p in g["params"]} == arch


# ---- the search loop -------------------------------------------------------------------------

def test_search_history_records_what_the_book_plots():
    net = small_net()
    loaders = make_search_loaders(data(), batch_size=6)
    history = darts_search(net, loaders.train, loaders.val, config(epochs=2, order=2), "cpu",
                           progress=False)
    row = history[-1]
    assert [r["epoch"] for r in history] == [1, 2]
    assert len(row["alphas_normal"]) == num_edges(4)
    assert sum(row["alphas_normal"][0]) == pytest.approx(1.0)
    assert set(row["train_nos_per_cell"]) == {"cells.0", "cells.1", "cells.2"}
    assert row["val_nos"] == pytest.approx(sum(row["val_nos_per_cell"].values()))
    assert Genotype.from_dict(row["genotype"]) == net.genotype()
    assert 0 <= row["val_acc"] <= 1 and row["seconds"] > 0 and not row["stopped_early"]
    # val numbers are measured in a fixed order: they equal a measurement on an
    # unshuffled loader over the alpha half (batch-statistics BN depends on batching)
    fixed = torch.utils.data.DataLoader(loaders.val.dataset, batch_size=6, shuffle=False)
    val = measure_cells(net, fixed, "cpu")
    assert val["nos_per_cell"] == row["val_nos_per_cell"] and val["loss"] == row["val_loss"]


def test_skip_cap_and_early_stop_in_the_loop():
    net = small_net()
    with torch.no_grad():                       # a collapsed supernet: skip dominates
        net.alphas_normal[:, DARTS_SNN_OPS.index("skip_connect")] = 5.0
    loaders = make_search_loaders(data(12), batch_size=6)
    history = darts_search(net, loaders.train, loaders.val,
                           config(max_skips=2, early_stop_skips=3, arch_lr=1e-6), "cpu",
                           progress=False)
    assert len(history) == 1 and history[0]["stopped_early"]          # DARTS+ stopped it
    assert history[0]["skip_count"] == 8                                # the raw cell collapsed
    assert Genotype.from_dict(history[0]["genotype"]).skip_count() == 2   # P-DARTS cap


def test_search_resume_equals_an_uninterrupted_search(tmp_path, monkeypatch):
    import snnlab.darts_search as ds
    cfg = config(epochs=3, order=2, aux_skip=0.5)

    def search(checkpoint, resume=False):
        net = small_net(auxiliary_skip=True)
        loaders = make_search_loaders(data(), batch_size=6, seed=3)
        history = darts_search(net, loaders.train, loaders.val, cfg, "cpu", checkpoint,
                               resume=resume, progress=False)
        return net, history

    saved = []
    real_save = ds.save_checkpoint

    def save_and_keep(path, state, **kwargs):
        real_save(path, state, **kwargs)
        copy = tmp_path / f"after_epoch_{state['epoch']}.pt"
        shutil.copy(path, copy)
        saved.append(copy)

    monkeypatch.setattr(ds, "save_checkpoint", save_and_keep)
    full_net, full = search(tmp_path / "run.pt")
    monkeypatch.setattr(ds, "save_checkpoint", real_save)
    shutil.copy(tmp_path / "after_epoch_1.pt", tmp_path / "resumed.pt")   # "killed" after epoch 1
    resumed_net, resumed = search(tmp_path / "resumed.pt", resume=True)

    def strip(rows):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in rows]

    assert strip(resumed) == strip(full)
    for (name, a), (_, b) in zip(full_net.state_dict().items(), resumed_net.state_dict().items()):
        assert torch.equal(a, b), name
    state = load_search_checkpoint(tmp_path / "resumed.pt", cfg)
    assert state["epoch"] == 3 and len(state["history"]) == 3
    with pytest.raises(ValueError, match="order: checkpoint 2 vs now 1"):
        load_search_checkpoint(tmp_path / "resumed.pt", dataclasses.replace(cfg, order=1))


def test_config_checks_and_profile_fields():
    with pytest.raises(ValueError, match="order"):
        DartsConfig(order=3)
    with pytest.raises(ValueError, match="unknown op"):
        DartsConfig(ops=("none", "conv_7x7"))
    tiny = DartsConfig.from_profile(get_profile("tiny"), order=2)
    assert tiny.order == 2 and tiny.layers == get_profile("tiny").darts_layers
    with pytest.raises(TypeError, match="unknown DartsConfig field"):
        DartsConfig.from_profile(get_profile("tiny"), colour="red")


def test_run_darts_search_writes_a_result_to_retrain(tmp_path):
    from snnlab.data import load_digits
    bundle = load_digits()
    out = tmp_path / "result.json"
    result = run_darts_search(get_profile("tiny"), bundle, epochs=1, out=out, device="cpu",
                              progress=False, layers=3, C=2, max_images=48, batch_size=12)
    loaded = load_search_result(out)
    assert loaded["genotype"] == result["genotype"] and loaded["config"]["epochs"] == 1
    net = build_darts_network(Genotype.from_dict(loaded["genotype"]), get_profile("tiny"), bundle)
    assert net(bundle.test[0][0].unsqueeze(0)).shape == (1, 10)


# ---- the discrete network ---------------------------------------------------------------------

def test_drop_path_is_not_in_place_and_off_in_eval():
    torch.manual_seed(0)
    x = torch.ones(3, 200, 2, 2, 2, requires_grad=True)
    y = drop_path(x, 0.5)
    assert torch.equal(x, torch.ones_like(x))                         # input untouched
    kept = y[0, :, 0, 0, 0]
    assert set(kept.tolist()) <= {0.0, 2.0} and 60 < (kept == 0).sum() < 140
    assert torch.equal(y[0], y[2])                                    # one mask per sample
    y.sum().backward()                                                # autograd is fine
    net = DiscreteNetwork(GENOTYPE, C=2, num_classes=3, layers=3, T=2, in_channels=1,
                          image_size=8, drop_path_prob=0.5)
    xb, _ = batch()
    net.eval()
    out = net(xb)
    net.drop_path_prob = 0.0
    torch.testing.assert_close(net(xb), out)                          # inactive in eval
    net.train()
    net.drop_path_prob = 0.5
    torch.manual_seed(1)
    a = net(xb)
    net.drop_path_prob = 0.0
    assert not torch.allclose(a, net(xb))                             # active in training


def test_discrete_network_trains_with_fit_and_builds_darts_v2():
    net = DiscreteNetwork(GENOTYPE, C=2, num_classes=3, layers=3, T=2, in_channels=1,
                          image_size=8, drop_path_prob=0.2)
    loader = torch.utils.data.DataLoader(data(12), batch_size=6)
    history = fit(net, loader, loader, TrainConfig(epochs=1, amp=False, lr=0.05), "cpu",
                  progress=False)
    assert len(history) == 1 and "nos_per_image" in evaluate(net, loader, "cpu")
    v2 = DiscreteNetwork(DARTS_V2, C=2, num_classes=3, layers=3, T=2, in_channels=1,
                         image_size=8)
    assert v2(batch()[0]).shape == (6, 3)


# ---- the auxiliary head (DARTS A.2.1, quark0 AuxiliaryHeadCIFAR) ------------------------------

def test_auxiliary_head_reads_the_cell_at_two_thirds_in_training_only():
    torch.manual_seed(0)
    net = DiscreteNetwork(GENOTYPE, C=2, num_classes=3, layers=6, T=2, in_channels=1,
                          image_size=8, auxiliary=True)
    assert net.aux_index == 4                                         # 2 * 6 // 3: 2nd reduction
    seen = {}
    net.cells[4].register_forward_hook(lambda module, args, out: seen.update(s=out))
    x, _ = batch()
    logits, aux_logits = net(x)
    torch.testing.assert_close(aux_logits, net.auxiliary_head(seen["s"]))
    assert logits.shape == aux_logits.shape == (6, 3)
    torch.manual_seed(0)
    plain = DiscreteNetwork(GENOTYPE, C=2, num_classes=3, layers=6, T=2, in_channels=1,
                            image_size=8)
    extra = set(net.state_dict()) - set(plain.state_dict())
    assert extra and all(k.startswith("auxiliary_head.") for k in extra)
    plain.load_state_dict({k: v for k, v in net.state_dict().items()
                           if not k.startswith("auxiliary_head.")})
    torch.testing.assert_close(plain(x), logits)                      # the head changes no logit
    net.eval()
    out = net(x)
    assert isinstance(out, torch.Tensor) and out.shape == (6, 3)      # eval: logits alone


@pytest.mark.parametrize("side,conv_side", [(8, 1), (2, 1), (16, 3)])
def test_auxiliary_head_shapes(side, conv_side):
    from snnlab.darts import DARTS_NEURON, AuxiliaryHead
    head = AuxiliaryHead(12, 10, DARTS_NEURON)
    sides = []
    head.conv2.register_forward_hook(lambda module, args, out: sides.append(out.shape[-1]))
    assert head(torch.rand(2, 3, 12, side, side).round()).shape == (3, 10)
    assert sides == [conv_side]       # 8x8: DARTS's pool 5/3 -> 2x2 -> conv 2x2 -> 1x1


def test_spikedhs_network_auxiliary_head():
    from snnlab.spikedhs import SpikeDHSGenotype, SpikeDHSNetwork
    cell = (("conv_3x3", 0), ("skip_connect", 1), ("conv_3x3", 1), ("conv_3x3", 2),
            ("skip_connect", 0), ("conv_3x3", 3))
    genotype = SpikeDHSGenotype(cell=cell, path=(0, 1, 1, 2, 2, 2))
    torch.manual_seed(0)
    net = SpikeDHSNetwork(genotype, 1, 3, T=2, filters=2, auxiliary=True)
    assert net.aux_index == 4
    seen = {}
    net.cells[4].register_forward_hook(lambda module, args, out: seen.update(s=out))
    x, _ = batch()
    logits, aux_logits = net(x)
    torch.testing.assert_close(aux_logits, net.auxiliary_head(seen["s"]))
    net.eval()
    assert isinstance(net(x), torch.Tensor)
    assert SpikeDHSNetwork(genotype, 1, 3, T=2, filters=2).auxiliary_head is None
