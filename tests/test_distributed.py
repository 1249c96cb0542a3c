"""DDP for fit: 2 gloo processes on a global batch == 1 process on it.

Both runs train a SpikingCNN (float64, batch norm, LIF) for one epoch of two
global batches of 16 digits with the same seed; the 2-process run shards each
batch (8 images per process), averages gradients with DDP and normalises with
the global batch's statistics (GlobalBatchNorm2d). Stated tolerance: weights and
BN statistics equal to 1e-9 relative (float64 rounding of the sums in a
different order); spikes do not flip at this precision on this batch.

A 2-process fit of 2 shuffled epochs, killed after epoch 1 (its checkpoint kept),
resumes in a group of 1 process and ends with the same weights (1e-9; the train loss
1e-6, since fit's cross-entropy is float32).
"""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.testing import assert_close
from torch.utils.data import DataLoader, TensorDataset

from snnlab import distributed as sd
from snnlab.data import load_digits
from snnlab.models import SpikingCNN
from snnlab.train import TrainConfig, fit

GLOBAL_BATCH, BATCHES = 16, 2


def _dataset():
    bundle = load_digits(seed=0)
    x = torch.stack([bundle.train[i][0] for i in range(GLOBAL_BATCH * BATCHES)]).double()
    y = torch.tensor([int(bundle.train[i][1]) for i in range(GLOBAL_BATCH * BATCHES)])
    return TensorDataset(x, y)


def _model():
    torch.manual_seed(0)
    return SpikingCNN(1, 10, widths=(8, 16), T=3, image_size=8, tau=2.0).double()


CONFIG = TrainConfig(epochs=1, lr=0.1, seed=0, weight_decay=0.0)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank, world, port, out, checkpoint):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    info = sd.init_from_env("gloo")
    try:
        model = sd.prepare_model(_model())
        loader = sd.shard_loader(_dataset(), GLOBAL_BATCH, shuffle=False)
        fit(model, loader, config=CONFIG, device="cpu", checkpoint=checkpoint, progress=False)
        if info.rank == 0:
            torch.save(sd.unwrap(model).state_dict(), out)
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_equal_one_process(tmp_path):
    single = _model()
    fit(single, DataLoader(_dataset(), batch_size=GLOBAL_BATCH), config=CONFIG, device="cpu",
        progress=False)
    out, checkpoint = tmp_path / "ddp.pt", tmp_path / "ddp_run.pt"
    mp.spawn(_worker, args=(2, _free_port(), str(out), str(checkpoint)), nprocs=2)
    ddp = torch.load(out)
    reference = single.state_dict()
    assert set(ddp) == set(reference)
    for name, value in reference.items():
        assert_close(ddp[name].to(value.dtype), value, rtol=1e-9, atol=1e-12, msg=name)
    # rank 0 wrote the checkpoint, with the unwrapped model's keys (resumable anywhere)
    saved = torch.load(checkpoint, weights_only=False)
    state = saved.get("model") or saved.get("state", {}).get("model")
    assert state is not None and set(state) == set(reference)


def test_global_batch_norm_is_batch_norm_outside_a_process_group():
    model = sd.global_batch_norm(nn.Sequential(nn.BatchNorm2d(3)))
    assert isinstance(model[0], sd.GlobalBatchNorm2d)
    x = torch.randn(4, 3, 2, 2)
    assert_close(model(x), nn.BatchNorm2d(3)(x))


def test_outside_torchrun_nothing_changes():
    assert sd.world_size() == 1 and sd.is_main_process()
    model = nn.Linear(2, 2)
    assert sd.prepare_model(model) is model and sd.unwrap(model) is model


def test_global_batch_must_split_over_processes():
    loader = sd.shard_loader(_dataset(), 5, shuffle=False)        # one process: any size
    assert loader.batch_size == 5


def test_collectives_do_nothing_outside_a_process_group():
    assert sd.sum_over_processes([1.5, 2]) == [1.5, 2.0]
    layer = nn.Linear(2, 1)
    layer(torch.ones(1, 2)).sum().backward()
    grad = layer.weight.grad.clone()
    sd.average_gradients(layer.parameters())
    sd.broadcast_state(layer)
    assert torch.equal(layer.weight.grad, grad)


def test_global_batch_norm_without_running_statistics_is_batch_norm():
    """The DARTS supernet's BN (no running statistics) normalises with the batch in eval too."""
    plain = nn.BatchNorm2d(3, affine=False, track_running_stats=False)
    model = sd.global_batch_norm(nn.Sequential(plain)).eval()
    x = torch.randn(4, 3, 2, 2)
    assert isinstance(model[0], sd.GlobalBatchNorm2d)
    assert_close(model(x), plain.eval()(x))


def _shards(dataset, global_batch, world):
    """What each of `world` ranks reads from shard_loader (samplers built by hand)."""
    from torch.utils.data.distributed import DistributedSampler
    return [DataLoader(dataset, batch_size=global_batch // world, drop_last=True,
                       sampler=DistributedSampler(dataset, num_replicas=world, rank=r,
                                                  shuffle=False, drop_last=True))
            for r in range(world)]


def test_a_sharded_loader_fingerprints_its_global_batch():
    from snnlab.checkpoints import loader_fingerprint
    dataset = _dataset()
    shard = _shards(dataset, 16, 2)[0]
    assert shard.batch_size == 8
    got = loader_fingerprint(shard)
    want = loader_fingerprint(DataLoader(dataset, batch_size=16, drop_last=True))
    assert got == want                      # batch 16, 2 batches: resumable at any world size


def test_unshuffled_keeps_each_rank_on_its_shard_of_every_global_batch():
    from snnlab.search.loop import unshuffled
    dataset = TensorDataset(torch.randn(32, 1), torch.arange(32))    # label = index
    ranks = [list(unshuffled(loader)) for loader in _shards(dataset, 16, 2)]
    whole = list(DataLoader(dataset, batch_size=16))
    assert len(ranks[0]) == len(ranks[1]) == len(whole)
    for k, (x, y) in enumerate(whole):
        union = torch.cat([ranks[0][k][1], ranks[1][k][1]])
        assert sorted(union.tolist()) == y.tolist()       # the same images, split in two


def _resume_worker(rank, world, port, tmp):
    """2 processes: 2 epochs, keeping the checkpoint of epoch 1; 1 process: resume it."""
    import shutil
    import snnlab.train as train
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    config = TrainConfig(epochs=2, lr=0.1, seed=0, weight_decay=0.0)
    real_save = train.save_checkpoint

    def save_and_keep(path, state, **kwargs):
        real_save(path, state, **kwargs)
        if state["epoch"] == 1:
            shutil.copy(path, os.path.join(tmp, "epoch1.pt"))

    train.save_checkpoint = save_and_keep
    with sd.process_group("gloo"):
        model = sd.prepare_model(_model())
        loader = sd.shard_loader(_dataset(), GLOBAL_BATCH, seed=0)       # shuffled per epoch
        checkpoint = os.path.join(tmp, f"run{world}.pt")
        if world == 1:
            shutil.copy(os.path.join(tmp, "epoch1.pt"), checkpoint)
        history = fit(model, loader, config=config, device="cpu", checkpoint=checkpoint,
                      resume=world == 1, progress=False)
        if rank == 0:
            torch.save({"state": sd.unwrap(model).state_dict(), "history": history},
                       os.path.join(tmp, f"final{world}.pt"))


def test_a_fit_of_two_processes_resumes_mid_run_in_one(tmp_path):
    mp.spawn(_resume_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2)
    mp.spawn(_resume_worker, args=(1, _free_port(), str(tmp_path)), nprocs=1)
    two, resumed = torch.load(tmp_path / "final2.pt"), torch.load(tmp_path / "final1.pt")
    for name, value in two["state"].items():
        assert_close(resumed["state"][name], value, rtol=1e-9, atol=1e-12, msg=name)
    for got, want in zip(resumed["history"], two["history"], strict=True):
        for key in ("train_acc", "lr", "epoch"):
            assert got[key] == want[key]
        assert_close(got["train_loss"], want["train_loss"], rtol=1e-6, atol=0)  # float32 loss
