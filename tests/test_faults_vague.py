"""Faults that used to raise a raw Python or torch error: each message now names the
file or argument, what was expected and the fix (issue 11, "vague")."""
import errno
import os
import urllib.error

import pytest
import torch

from snnlab import data
from snnlab import train as train_module
from snnlab.genotypes import Genotype
from snnlab.models import SpikingCNN
from snnlab.results import load_result
from snnlab.safeio import read_json
from snnlab.train import save_checkpoint
from test_data import write_cifar

CIFAR10_FOLDER = "cifar-10-batches-py"


# ----------------------------------------------------------------------------- CIFAR files

@pytest.mark.parametrize("damage, says", [
    (lambda raw: raw[:len(raw) // 2], "pickle data was truncated"),
    (lambda raw: b"", "(0 bytes) cannot be read"),            # EOFError: Ran out of input
    (lambda raw: b"this is not a pickle at all", "UnpicklingError"),
])
def test_damaged_cifar_batch_names_the_file_and_the_fix(tmp_path, damage, says):
    write_cifar(tmp_path, "cifar10")
    batch = tmp_path / CIFAR10_FOLDER / "data_batch_3"
    batch.write_bytes(damage(batch.read_bytes()))
    with pytest.raises(RuntimeError) as info:
        data.load_cifar("cifar10", root=tmp_path)
    message = str(info.value)
    assert str(batch) in message and says in message
    assert "download=True" in message


def test_wrongly_keyed_cifar_batch_names_the_missing_key(tmp_path):
    import pickle
    write_cifar(tmp_path, "cifar10")
    batch = tmp_path / CIFAR10_FOLDER / "test_batch"
    with open(batch, "wb") as f:
        pickle.dump({b"images": [], b"labels": []}, f, protocol=2)     # "data" misnamed
    with pytest.raises(RuntimeError, match=r"test_batch lacks the key\(s\) \['data'\]"):
        data.load_cifar("cifar10", root=tmp_path)


def test_download_without_network_names_the_url_and_the_offline_fix(tmp_path, monkeypatch):
    def offline(url, timeout=None):
        raise urllib.error.URLError(OSError(errno.ENETUNREACH, "Network is unreachable"))

    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    with pytest.raises(RuntimeError) as info:
        data.load_cifar("cifar10", root=tmp_path, download=True)
    message = str(info.value)
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert "offline" in message and "Network is unreachable" in message
    assert [p.name for p in tmp_path.iterdir()] == []        # no .part file left


# ----------------------------------------------------------------------------- models

@pytest.mark.parametrize("shape, names", [((2, 3, 8, 8), "1 channel"),
                                          ((2, 1, 32, 32), "8x8 pixels"),
                                          ((2, 64), "[B, C, H, W]")])
def test_spiking_cnn_names_a_wrong_input_shape(shape, names):
    model = SpikingCNN(in_channels=1, num_classes=10, widths=(4,), T=2, image_size=8)
    with pytest.raises(ValueError, match="SpikingCNN") as info:
        model(torch.rand(*shape))
    assert names in str(info.value)


# ----------------------------------------------------------------------------- genotypes

@pytest.mark.parametrize("garbage, names", [
    ({"matrix": 5}, "exactly the keys"),
    (5, "needs a dict"),
    ({"normal": 5, "normal_concat": [2], "reduce": [], "reduce_concat": [2]}, "Genotype.normal"),
    ({"normal": [["conv", 0], ["conv", 7]], "normal_concat": [2], "reduce": [["conv", 0],
      ["conv", 1]], "reduce_concat": [2]}, "source must be in 0..1"),
    ({"normal": [["conv", 0], ["conv", 1]], "normal_concat": "2", "reduce": [["conv", 0],
      ["conv", 1]], "reduce_concat": [2]}, "normal_concat"),
])
def test_genotype_from_garbage_names_the_field(garbage, names):
    with pytest.raises((TypeError, ValueError)) as info:
        Genotype.from_dict(garbage)
    assert names in str(info.value)


@pytest.mark.parametrize("garbage, names", [({"matrix": 5}, "'matrix' must be 4 rows"),
                                            ({"matrix": [1, 2, 3, 4]}, "'matrix' must be 4 rows"),
                                            ({"matrix": [[0] * 4] * 4, "ops": 7}, "'ops' must"),
                                            ("0303", "expected a dict")])
def test_cell_genotype_from_garbage_names_the_field(garbage, names):
    from snnlab.snasnet import CellGenotype
    with pytest.raises(ValueError, match=names):
        CellGenotype.from_dict(garbage)


# ----------------------------------------------------------------------------- JSON files

def test_invalid_json_result_names_the_file_and_the_place(tmp_path):
    broken = tmp_path / "rank.json"
    broken.write_text('{"provenance": {"command": "x"},\n  "tau": 0.3,,}')
    with pytest.raises(ValueError, match=r"rank.json' is not valid JSON: .* line 2"):
        load_result("rank.json", folder=tmp_path)
    with pytest.raises(ValueError, match="not a text"):
        (tmp_path / "binary.json").write_bytes(b"\xff\xfe\x00garbage")
        read_json(tmp_path / "binary.json", "search result")


# ----------------------------------------------------------------------------- full disk

def test_full_disk_during_a_checkpoint_names_the_path_and_keeps_the_old_one(tmp_path,
                                                                             monkeypatch):
    path = tmp_path / "run.pt"
    save_checkpoint(path, {"epoch": 1})
    before = path.read_bytes()

    def disk_full(obj, f):
        f.write(b"x" * 100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(train_module.torch, "save", disk_full)
    with pytest.raises(OSError) as info:
        save_checkpoint(path, {"epoch": 2})
    message = str(info.value)
    assert info.value.errno == errno.ENOSPC
    assert str(path) in message and "the disk is full" in message
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["run.pt"]


def test_full_disk_while_saving_json_says_so(tmp_path, monkeypatch):
    from snnlab import safeio

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(safeio.json, "dump", no_space)
    with pytest.raises(OSError, match="could not write JSON file .*r.json.*disk is full"):
        safeio.write_json_atomic(tmp_path / "r.json", {"a": 1})
    assert os.listdir(tmp_path) == []


# ----------------------------------------------------------------------------- search results

@pytest.mark.parametrize("content, says", [
    ({"method": "random", "ranking": [], "best": {}, "seconds": 1.0, "candidates": 0,
      "draws": 0, "settings": {}}, "ranking is empty"),
    ('{"method": "snasnet",,}', "is not valid JSON"),
])
def test_train_on_an_unusable_search_result_names_the_file(tmp_path, capsys, monkeypatch,
                                                            content, says):
    import json
    from snnlab.cli import main
    monkeypatch.setenv("SNNLAB_PROGRESS", "0")
    result = tmp_path / "search.json"
    result.write_text(content if isinstance(content, str) else json.dumps(content))
    assert main(["train", "--profile", "tiny", "--epochs", "1", "--genotype", str(result)]) == 1
    err = capsys.readouterr().err
    assert str(result) in err and says in err
