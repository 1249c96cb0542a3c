"""DDP in the shared search loop: 2 gloo processes on a global batch == 1 process on it.

Every run below happens in a gloo process group started by ``mp.spawn``: 2 processes,
or 1 for the reference. A group of one reads the data through the same sharded sampler
as a group of two (:func:`snnlab.search.loop.make_search_loaders` under torchrun), so
both see the same global batches of 8 digits; each of the 2 processes holds 4 of them.

* DARTS, first and second order, 2 epochs: weights and alphas equal, history equal
  (losses, accuracies, spikes per cell, alphas, genotype, images).
* A 2-process checkpoint after epoch 1 resumes in a group of 1 and ends where the
  uninterrupted runs end (resume on any world size).
* SpikeDHS (architecture step after the weight step, alpha + beta + searched time
  constants, the architecture half's loss and accuracy recorded): one epoch, equal.
* SpikeDHS with DGS: every rank picks the same ``b``, and the run equals one process
  (probe gradients and look-ahead losses are averaged over the ranks).

Stated tolerance: 1e-9 relative (atol 1e-12) for every float, in float64 supernets.
The two runs differ only in the order of sums (gradients averaged over 2 shards, BN
statistics summed over 2 shards), about 1e-15 in float64; no spike flips at that
distance here (a flip would change a loss by far more than 1e-9). Both ranks of the
2-process run hold bit-identical weights and histories.
"""
import os
import shutil
import socket
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp
from torch.testing import assert_close
from torch.utils.data import TensorDataset

import snnlab.darts_search as ds
from snnlab import distributed as sd
from snnlab.darts import SearchNetwork
from snnlab.darts_search import DartsConfig, darts_search
from snnlab.data import load_digits
from snnlab.search.loop import make_search_loaders
from snnlab.spikedhs_search import SpikeDHSConfig, build_spikedhs_supernet, spikedhs_search

GLOBAL_BATCH, IMAGES = 8, 64

pytestmark = pytest.mark.slow       # two spawns, 2 + 1 processes: about 60-90 s on 2 cores


def _digits() -> TensorDataset:
    bundle = load_digits(seed=0)
    x = torch.stack([bundle.train[i][0] for i in range(IMAGES)]).double() * 2   # more spikes
    y = torch.tensor([int(bundle.train[i][1]) for i in range(IMAGES)])
    return TensorDataset(x, y)


def _darts_config(order: int) -> DartsConfig:
    return DartsConfig(epochs=2, layers=3, C=2, T=2, batch_size=GLOBAL_BATCH, lr=0.1,
                       arch_lr=3e-2, order=order, seed=0)


def _darts(order: int, checkpoint=None, resume=False):
    config = _darts_config(order)
    loaders = make_search_loaders(_digits(), config.batch_size, config.seed)
    torch.manual_seed(0)
    net = SearchNetwork(C=2, num_classes=10, layers=3, T=2, in_channels=1, image_size=8).double()
    history = darts_search(net, loaders.train, loaders.val, config, "cpu", checkpoint,
                           resume=resume, progress=False)
    return {"state": net.state_dict(), "history": history}


def _spikedhs(dgs: bool):
    config = SpikeDHSConfig(epochs=1, layers=2, levels=2, filters=2, T=2,
                            batch_size=GLOBAL_BATCH, lr=0.1, arch_lr=0.05, dgs=dgs, dgs_every=1,
                            dgs_batches=2, dgs_deltas=(-0.4, 0.0, 0.4), temporal=True,
                            tau_range=(1.1, 3.0), tau_lr=0.5, nos_batches=2, seed=0)
    loaders = make_search_loaders(_digits(), config.batch_size, config.seed)
    torch.manual_seed(0)
    bundle = SimpleNamespace(in_channels=1, num_classes=10, image_size=8)
    net = build_spikedhs_supernet(config, bundle).double()
    history, state = spikedhs_search(net, loaders.train, loaders.val, config, "cpu",
                                     progress=False)
    return {"state": net.state_dict(), "history": history, "b": state.b}


_SAVE = ds.save_checkpoint


def _keep_epoch_1(out):
    """Wrap darts_search's checkpoint writer: keep a copy of the file after epoch 1."""
    def save(path, state, **kwargs):
        _SAVE(path, state, **kwargs)
        if state["epoch"] == 1:
            shutil.copy(path, out)
    ds.save_checkpoint = save


def _runs(tmp: str, rank: int, world: int) -> None:
    """What each process runs; rank r of a group of `world` saves its results."""
    name = f"{world}_rank{rank}"
    for order in (1, 2):
        _keep_epoch_1(os.path.join(tmp, f"darts{order}_{world}_epoch1.pt"))
        result = _darts(order, os.path.join(tmp, f"darts{order}_{world}.pt"))
        torch.save(result, os.path.join(tmp, f"darts{order}_{name}.pt"))
        if world == 1:                         # resume the 2 processes' epoch 1 here
            resumed = os.path.join(tmp, f"darts{order}_resumed.pt")
            shutil.copy(os.path.join(tmp, f"darts{order}_2_epoch1.pt"), resumed)
            torch.save(_darts(order, resumed, resume=True),
                       os.path.join(tmp, f"darts{order}_resumed_{name}.pt"))
    torch.save(_spikedhs(dgs=False), os.path.join(tmp, f"spikedhs_{name}.pt"))
    torch.save(_spikedhs(dgs=True), os.path.join(tmp, f"dgs_{name}.pt"))


def _worker(rank: int, world: int, port: int, tmp: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    with sd.process_group("gloo"):
        _runs(tmp, rank, world)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _assert_same(got, want, where=""):
    """Equal structure; floats (and tensors) within 1e-9 relative, the rest exactly."""
    if isinstance(want, dict):
        assert set(got) == set(want), where
        for key in want:
            if key != "seconds":
                _assert_same(got[key], want[key], f"{where}.{key}")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), where
        for i, (g, w) in enumerate(zip(got, want)):
            _assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, (float, torch.Tensor)):
        assert_close(got, want, rtol=1e-9, atol=1e-12, msg=where)
    else:
        assert got == want, where


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("ddp_search"))
    mp.spawn(_worker, args=(2, _free_port(), tmp), nprocs=2)
    mp.spawn(_worker, args=(1, _free_port(), tmp), nprocs=1)
    return lambda name: torch.load(os.path.join(tmp, name), weights_only=False)


@pytest.mark.parametrize("order", [1, 2])
def test_darts_two_processes_equal_one(runs, order):
    two, one = runs(f"darts{order}_2_rank0.pt"), runs(f"darts{order}_1_rank0.pt")
    assert [row["epoch"] for row in two["history"]] == [1, 2]
    assert two["history"][-1]["images"] == IMAGES       # every image of both halves, counted once
    _assert_same(two["state"], one["state"], "state")  # weights and alphas
    _assert_same(two["history"], one["history"], "history")
    other = runs(f"darts{order}_2_rank1.pt")           # rank 1 holds the very same numbers
    assert all(torch.equal(other["state"][k], v) for k, v in two["state"].items())
    assert other["history"][-1]["alphas_normal"] == two["history"][-1]["alphas_normal"]


@pytest.mark.parametrize("order", [1, 2])
def test_a_two_process_search_resumes_in_one_process(runs, order):
    resumed, two = runs(f"darts{order}_resumed_1_rank0.pt"), runs(f"darts{order}_2_rank0.pt")
    _assert_same(resumed["state"], two["state"], "state")
    _assert_same(resumed["history"], two["history"], "history")


def test_spikedhs_two_processes_equal_one(runs):
    two, one = runs("spikedhs_2_rank0.pt"), runs("spikedhs_1_rank0.pt")
    assert two["history"][0]["tau"] is not None and two["history"][0]["val_acc"] is not None
    _assert_same(two["state"], one["state"], "state")   # weights, alpha, beta, tau
    _assert_same(two["history"], one["history"], "history")


def test_dgs_picks_the_same_b_on_every_rank(runs):
    rank0, rank1 = runs("dgs_2_rank0.pt"), runs("dgs_2_rank1.pt")
    assert rank0["b"] == rank1["b"]
    assert rank0["history"][0]["dgs"]["mean_losses"] == rank1["history"][0]["dgs"]["mean_losses"]
    assert all(torch.equal(rank1["state"][k], v) for k, v in rank0["state"].items())


def test_dgs_two_processes_equal_one(runs):
    two, one = runs("dgs_2_rank0.pt"), runs("dgs_1_rank0.pt")
    assert two["history"][0]["dgs"] is not None
    _assert_same(two["b"], one["b"], "b")
    _assert_same(two["state"], one["state"], "state")
    _assert_same(two["history"], one["history"], "history")
