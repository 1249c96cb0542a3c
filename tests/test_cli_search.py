"""The differentiable searches on the command line, and retraining what they found."""
import dataclasses
import json
import subprocess
import sys

import pytest

import snnlab.cli_search as cli_search
from snnlab.cli import main
from snnlab.profiles import get_profile


@pytest.fixture
def small_profile(monkeypatch):
    # a few images and epochs: the command line is under test, not the search
    small = dataclasses.replace(
        get_profile("tiny"), epochs=1, darts_max_images=64, darts_layers=3, darts_batch_size=16,
        darts_eval_layers=3, spikedhs_max_images=64, spikedhs_batch_size=16, spikedhs_layers=2,
        spikedhs_dgs_batches=1, madarts_retrain_epochs=1, spikedhs_retrain_epochs=1)
    monkeypatch.setattr("snnlab.cli_common.get_profile", lambda name=None: small)
    monkeypatch.setattr("snnlab.cli.get_profile", lambda name=None: small)
    return small


@pytest.mark.parametrize("method,switches", [
    ("darts", ["--order", "1"]),
    ("madarts", ["--attention", "eca", "--placement", "node_input"]),
    ("spikedhs", ["--dgs", "--temporal"]),
])
def test_search_then_retrain(small_profile, tmp_path, capsys, method, switches):
    out = tmp_path / f"{method}.json"
    assert main(["search", method, *switches, "--epochs", "1", "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    result = json.loads(out.read_text())
    assert summary["method"] == result["method"] == method
    assert result["provenance"]["command"].startswith(f"python -m snnlab search {method}")
    assert len(result["history"]) == 1 and "genotype" in result

    summary_path = tmp_path / "train.json"
    assert main(["train", "--genotype", str(out), "--out", str(summary_path)]) == 0
    trained = json.loads(summary_path.read_text())
    assert trained["model"] == method and 0.0 <= trained["accuracy"] <= 1.0
    assert trained["nos_per_image"] > 0


def test_read_search_result_ignores_other_files(tmp_path):
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"model": "baseline", "accuracy": 0.9}))
    assert cli_search.read_search_result(other) is None
    assert cli_search.read_search_result(tmp_path / "missing.json") is None


def _result(method, tmp_path):
    """A hand-written search result file, as `search ... --out` writes (no search run)."""
    from snnlab.genotypes import DARTS_V2
    path = tmp_path / f"{method}.json"
    path.write_text(json.dumps({"method": method, "genotype": DARTS_V2.to_dict(),
                                "config": {"attention": "eca" if method == "madarts" else "none",
                                           "attention_placement": "cell_output"}}))
    return path


def test_madarts_result_is_built_at_madarts_eval_size(tmp_path):
    from snnlab.data import load_dataset
    profile = dataclasses.replace(get_profile("tiny"), darts_eval_layers=3, darts_eval_channels=4,
                                  madarts_eval_layers=4, madarts_eval_channels=6)
    bundle = load_dataset("digits")
    for method, (layers, C) in (("darts", (3, 4)), ("madarts", (4, 6))):
        result = json.loads(_result(method, tmp_path).read_text())
        model = cli_search.build_searched_model(result, profile, bundle)
        assert len(model.cells) == layers and model.stem[0].out_channels == 3 * C
        assert model.auxiliary_head is None
    aux = cli_search.build_searched_model(result, profile, bundle, auxiliary=True)
    assert aux.auxiliary_head is not None


def test_train_genotype_uses_the_methods_recipe(monkeypatch, tmp_path):
    # a darts result retrains with the darts_eval_* recipe, not the baseline's
    recipe = dataclasses.replace(
        get_profile("tiny"), epochs=5, batch_size=64, darts_eval_layers=3, darts_eval_channels=2,
        darts_drop_path=0.2, darts_eval_epochs=2, darts_eval_batch_size=100, darts_eval_lr=0.02,
        darts_eval_lr_min=0.0, darts_eval_weight_decay=3e-4, darts_eval_cutout=4,
        darts_eval_aux_weight=0.4, darts_eval_grad_clip=5.0, darts_eval_drop_path_ramp=True)
    monkeypatch.setattr("snnlab.cli.get_profile", lambda name=None: recipe)
    summary_path = tmp_path / "train.json"
    assert main(["train", "--genotype", str(_result("darts", tmp_path)),
                 "--out", str(summary_path)]) == 0
    trained = json.loads(summary_path.read_text())
    config = trained["config"]
    assert (config["epochs"], config["lr"], config["weight_decay"], config["cutout"],
            config["aux_weight"], config["grad_clip"], config["drop_path_max"]) == (
        2, 0.02, 3e-4, 4, 0.4, 5.0, 0.2)
    assert trained["batch_size"] == 100 and len(trained["history"]) == 2
    from snnlab.data import load_dataset
    plain = cli_search.build_searched_model(json.loads(_result("darts", tmp_path).read_text()),
                                            recipe, load_dataset("digits"))
    assert trained["params"] == sum(p.numel() for p in plain.parameters())   # head not counted


def test_search_list_names_every_registered_method(capsys):
    assert main(["search", "--list"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    from snnlab.search import search_names
    assert listed == search_names() == ["snasnet", "darts", "madarts", "spikedhs"]


@pytest.mark.parametrize("method", ["snasnet", "darts", "madarts", "spikedhs"])
def test_every_method_has_its_help(method, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["search", method, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "--profile" in text and "--out" in text and "--set" in text


def test_set_overrides_any_config_field(small_profile, tmp_path, capsys):
    out = tmp_path / "s.json"
    assert main(["search", "snasnet", "--candidates", "2", "--batch-size", "8",
                 "--set", "channels=4", "--set", "fc=16", "--out", str(out)]) == 0
    from snnlab.search import SearchResult
    result = SearchResult.load(out)
    assert (result.method, result.config["channels"], result.config["fc"]) == ("snasnet", 4, 16)
    with pytest.raises(SystemExit):
        main(["search", "darts", "--set", "colour=red"])
    assert "--set takes FIELD=VALUE" in capsys.readouterr().err


def test_cli_modules_import_alone_without_each_other():
    # each CLI module imports on its own, and neither imports the other at module level
    code = ("import sys, importlib; m = importlib.import_module('snnlab.{0}'); "
            "assert 'snnlab.{1}' not in sys.modules, '{0} imported {1}'")
    for a, b in (("cli", "cli_search"), ("cli_search", "cli")):
        done = subprocess.run([sys.executable, "-c", code.format(a, b)], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stderr
