"""``torchrun ... -m snnlab train``: 2 gloo processes on a global batch == 1 process on it.

The same command runs under ``python -m torch.distributed.run`` with 2 processes and
with 1 (the reference: a one-process group reads the data through the same sharded
sampler, so both see the same global batches of 64 digits; a plain ``python -m snnlab``
run shuffles with its own generator, another order). One epoch of the tiny baseline in
float64 (``--dtype float64``).

Stated tolerances, and why they hold:

* weights, BN statistics, val/test loss and accuracy, spikes per image: 1e-9 relative.
  In float64 the two runs differ only in the order of the sums (gradient average over
  2 shards, BN statistics summed over 2 shards), about 1e-15; a spike flips only if a
  membrane lies within that distance of the threshold, which did not happen here
  (measured: largest weight difference 3e-14 relative). A flip would move the weights
  by about lr * grad ~ 1e-4 and fail this test.
* ``train_loss``: 1e-6 relative. fit computes the cross-entropy in float32 (for mixed
  precision), so the loss of a 64-image batch summed in one piece and in two shards
  rounds differently at float32 precision (measured: 1.6e-8 relative); its gradient
  and everything else stays float64.

Also: a global batch that does not divide by the processes is refused before any work;
``torchrun ... search darts`` runs data-parallel with one summary and one result file
(rank 0's; the equality of the searches is tests/test_distributed_search.py); the
training-free search refuses torchrun and points to ``--storage``.
"""
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch.testing import assert_close

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ["train", "--profile", "tiny", "--epochs", "1", "--device", "cpu", "--dtype", "float64"]

pytestmark = pytest.mark.slow       # six launches of torchrun: about a minute on 2 cores


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _torchrun(processes: int, args: list, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "SNNLAB_PROGRESS": "0",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
               "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
               "-m", "snnlab", *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def _weights(path: Path) -> dict:
    return torch.load(path, weights_only=False)["model"]


def _assert_same_summary(got: dict, want: dict) -> None:
    for key in ("accuracy", "test_loss", "val_accuracy", "nos_per_image", "sops_per_image",
                "energy_per_image_uJ", "params"):
        assert_close(got[key], want[key], rtol=1e-9, atol=0, msg=key)
    (row,), (ref,) = got["history"], want["history"]
    for key in ("val_loss", "val_acc", "train_acc", "lr"):
        assert_close(row[key], ref[key], rtol=1e-9, atol=0, msg=key)
    assert_close(row["train_loss"], ref["train_loss"], rtol=1e-6, atol=0)   # float32 loss


def test_torchrun_two_processes_equal_one_and_resume_on_another_world_size(tmp_path):
    two = _torchrun(2, TRAIN + ["--out", "two.json", "--checkpoint", "two.pt"], tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    one = _torchrun(1, TRAIN + ["--out", "one.json", "--checkpoint", "one.pt"], tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]

    # rank 0 alone printed the summary: one JSON document on stdout
    summary = json.loads(two.stdout)
    assert summary["processes"] == 2 and summary["batch_size"] == 64
    assert summary == json.loads((tmp_path / "two.json").read_text())
    reference = json.loads((tmp_path / "one.json").read_text())
    assert reference["processes"] == 1
    _assert_same_summary(summary, reference)

    got, want = _weights(tmp_path / "two.pt"), _weights(tmp_path / "one.pt")
    assert set(got) == set(want) and not any(name.startswith("module.") for name in got)
    for name, value in want.items():
        assert_close(got[name], value, rtol=1e-9, atol=1e-12, msg=name)

    # the checkpoint of 2 processes resumes with 1 (the global batch is its fingerprint)
    resumed = _torchrun(1, TRAIN + ["--out", "resumed.json", "--checkpoint", "two.pt",
                                    "--resume"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    again = json.loads((tmp_path / "resumed.json").read_text())
    assert again["history"] == summary["history"]            # the finished run, as stored
    _assert_same_summary(again, summary)


def test_a_global_batch_that_does_not_split_is_refused(tmp_path):
    done = _torchrun(2, TRAIN + ["--batch-size", "63"], tmp_path)
    assert done.returncode != 0
    assert "must divide by 2" in done.stderr and "--batch-size 62" in done.stderr
    assert not list(tmp_path.iterdir())                      # nothing written


def test_torchrun_search_runs_data_parallel_and_rank_0_writes(tmp_path):
    search = ["search", "darts", "--profile", "tiny", "--epochs", "1", "--device", "cpu",
              "--set", "max_images=64", "--set", "batch_size=16", "--out", "darts.json"]
    done = _torchrun(2, search, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)                        # one summary: rank 0's
    saved = json.loads((tmp_path / "darts.json").read_text())
    assert summary["epochs"] == 1 and saved["provenance"]["processes"] == 2
    assert saved["history"][0]["images"] == 64              # both halves, counted once


def test_torchrun_refuses_a_search_that_is_not_data_parallel(tmp_path):
    done = _torchrun(2, ["search", "snasnet", "--profile", "tiny", "--candidates", "2"], tmp_path)
    assert done.returncode != 0 and "--storage" in done.stderr
