"""The command line: `python -m snnlab train ...` prints and writes a JSON summary."""
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from snnlab.cli import MODELS, build_parser, main

ROOT = Path(__file__).resolve().parents[1]
SUMMARY_KEYS = {"model", "profile", "dataset", "accuracy", "nos_per_image",
                "energy_per_image_uJ", "params", "seconds", "device", "snnlab_version",
                "torch_version", "command", "config", "history"}


@pytest.fixture
def tiny_env(monkeypatch):
    monkeypatch.delenv("SNNLAB_PROFILE", raising=False)
    monkeypatch.setenv("SNNLAB_PROGRESS", "0")


def test_train_writes_json_summary(tmp_path, capsys, tiny_env):
    out = tmp_path / "s.json"
    argv = ["train", "--model", "baseline", "--profile", "tiny", "--epochs", "1",
            "--device", "cpu", "--out", str(out)]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads(out.read_text())
    assert printed == written
    assert SUMMARY_KEYS <= set(written)
    assert (written["model"], written["profile"], written["dataset"]) == ("baseline", "tiny",
                                                                          "digits")
    assert 0.0 <= written["accuracy"] <= 1.0 and written["accuracy"] > 0.3   # chance is 0.1
    assert written["nos_per_image"] > 0 and written["energy_per_image_uJ"] > 0
    assert written["params"] > 0 and written["device"] == "cpu"
    assert written["config"]["epochs"] == 1 and len(written["history"]) == 1
    assert written["command"] == "python -m snnlab " + " ".join(argv)
    assert [p.name for p in tmp_path.iterdir()] == ["s.json"]          # no temp file left


def test_train_checkpoint_and_resume(tmp_path, capsys, tiny_env):
    ckpt = tmp_path / "run.pt"
    base = ["train", "--profile", "tiny", "--epochs", "1", "--device", "cpu",
            "--checkpoint", str(ckpt)]
    assert main(base) == 0
    first = json.loads(capsys.readouterr().out)
    assert ckpt.is_file()
    assert main(base + ["--resume"]) == 0      # finished run: evaluates the saved weights
    again = json.loads(capsys.readouterr().out)
    assert again["accuracy"] == first["accuracy"]
    assert again["history"] == first["history"]


def test_profile_from_environment(capsys, monkeypatch):
    monkeypatch.setenv("SNNLAB_PROFILE", "nope")
    assert main(["train", "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert "unknown profile 'nope'" in err and "SNNLAB_PROFILE" in err


def test_missing_cifar_folder_is_a_clear_error(tmp_path, capsys):
    code = main(["train", "--profile", "colab", "--epochs", "1", "--device", "cpu",
                 "--data-root", str(tmp_path)])
    assert code == 1
    err = capsys.readouterr().err
    assert "cifar10 not found" in err and "download" in err


@pytest.mark.parametrize("argv", [
    ["train", "--profile", "huge"],
    ["train", "--model", "resnet"],
    ["train", "--epochs", "two"],
    ["train", "--resume"],
])
def test_bad_usage_exits_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "train" in capsys.readouterr().err


def test_parser_lists_models_and_commands():
    parser = build_parser()
    args = parser.parse_args(["train"])
    assert args.model == "baseline" and args.profile is None and callable(args.run)
    assert "baseline" in MODELS


def test_python_dash_m_entry_point():
    done = subprocess.run([sys.executable, "-m", "snnlab", "train", "--help"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--profile" in done.stdout and "--checkpoint" in done.stdout


# ----------------------------------------------------------------------------- search snasnet

def test_search_snasnet_then_train_the_best_cell(tmp_path, capsys, tiny_env):
    from snnlab.trainfree import SearchResult
    result_path = tmp_path / "search.json"
    argv = ["search", "snasnet", "--space", "fw", "--candidates", "3", "--profile", "tiny",
            "--batch-size", "32", "--seed", "1", "--device", "cpu", "--out", str(result_path)]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    result = SearchResult.load(result_path)
    assert (printed["method"], printed["space"], printed["candidates"]) == ("random", "fw", 3)
    assert result.candidates == len(result.ranking) == 3
    assert printed["best"] == result.best_genotype().to_string()
    assert printed["best_score"] == result.best_score
    assert result.settings["batch_size"] == 32 and result.settings["batches"] == 2
    assert result.settings["seed"] == 1 and result.settings["space"] == "fw"
    assert result.provenance["profile"] == "tiny" and result.settings["mode"] == "train"
    assert result.method == "snasnet" and result.config["strategy"] == "random"
    prov = result.provenance
    assert prov["command"] == "python -m snnlab " + " ".join(argv)
    assert prov["device"] == "cpu" and {"date", "snnlab_version", "torch_version"} <= set(prov)
    assert [p.name for p in tmp_path.iterdir()] == ["search.json"]     # no temp file left

    summary_path = tmp_path / "train.json"
    assert main(["train", "--genotype", str(result_path), "--profile", "tiny", "--epochs", "1",
                 "--device", "cpu", "--out", str(summary_path)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == json.loads(summary_path.read_text())
    assert SUMMARY_KEYS <= set(summary)
    assert summary["model"] == "snasnet" and summary["genotype"] == printed["best"]
    assert str(result_path) in summary["genotype_source"]
    assert 0.0 <= summary["accuracy"] <= 1.0 and summary["params"] > 0
    assert len(summary["history"]) == 1
    assert summary["config"]["lr"] == summary["profile_settings"]["snasnet"]["lr"]


def test_search_evolution_with_other_scoring_choices(capsys, tiny_env):
    # at initialisation, eval-mode BN does not normalise: the tiny SNASNet is mostly
    # silent, and whether every candidate scores -inf depends on the CPU's arithmetic;
    # the warning must appear exactly when they all do
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert main(["search", "snasnet", "--space", "bw", "--method", "evolution",
                     "--candidates", "4", "--population", "2", "--sample-size", "2",
                     "--kernel", "hamming", "--mode", "eval", "--no-reset", "--batches", "2",
                     "--batch-size", "16", "--device", "cpu"]) == 0
    printed = json.loads(capsys.readouterr().out)
    all_silent = all(entry["score"] == -math.inf for entry in printed["top"])
    warned = any("every candidate scored -inf" in str(w.message) for w in caught)
    assert warned == all_silent
    assert (printed["method"], printed["candidates"], printed["kernel"], printed["mode"],
            printed["reset_between_batches"]) == ("evolution", 4, "hamming", "eval", False)
    assert printed["out"] is None and len(printed["top"]) == 4


def test_genotype_from_a_matrix_string():
    from snnlab.cli import load_genotype
    genotype, source = load_genotype("0303 0030 2002 0200")       # the released CIFAR-10 cell
    assert genotype.to_string() == "0303 0030 2002 0200" and genotype.is_backward
    assert "command line" in source


@pytest.mark.parametrize("genotype, message", [
    ("missing.json", "no such file"),
    ("0303 0030", "neither a search result file nor a connection matrix"),
])
def test_bad_genotype_is_a_clear_error(genotype, message, capsys, tiny_env):
    assert main(["train", "--genotype", genotype, "--profile", "tiny", "--epochs", "1"]) == 1
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    ["search", "snasnet", "--space", "diagonal"],
    ["search", "snasnet", "--method", "bayes"],
    ["search", "snasnet", "--candidates", "0"],
    ["search", "snasnet", "--kernel", "rbf"],
    ["search", "bayesian"],
    ["search", "darts", "--order", "3"],
    ["search", "madarts", "--attention", "transformer"],
])
def test_search_bad_usage_exits_with_status_2(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_search_without_a_method_prints_help(capsys):
    assert main(["search"]) == 2
    assert "snasnet" in capsys.readouterr().err
