"""The one search interface: registry, SearchResult (JSON, old formats), Pareto selection."""
import dataclasses
import json
import math

import pytest
import torch

from snnlab.data import load_digits
from snnlab.genotypes import DARTS_V2, Genotype
from snnlab.profiles import get_profile
from snnlab.search import (SEARCH_METHODS, SearchMethod, SearchResult, candidate_points,
                           get_search, pareto_front, pick, register_search, search_names,
                           unregister_search)
from snnlab.snasnet import CellGenotype
from snnlab.spikedhs import SpikeDHSGenotype

CELL = CellGenotype.from_string("0303 0030 2002 0200")
SPIKEDHS = SpikeDHSGenotype(cell=(("skip_connect", 0), ("spike_conv_3x3", 1)) * 3, path=(0, 1))


# ---- SearchResult ----------------------------------------------------------------------------

@pytest.mark.parametrize("genotype", [CELL, DARTS_V2, SPIKEDHS])
def test_result_round_trips_every_genotype_type(genotype, tmp_path):
    result = SearchResult("demo", genotype, history=({"epoch": 1, "val_acc": 0.5},),
                          cost={"seconds": 1.5, "epochs": 1}, metrics={"accuracy": 0.5},
                          config={"seed": 0, "ops": ["a", "b"]}, provenance={"device": "cpu"})
    path = tmp_path / "r.json"
    result.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]          # no temp file left
    again = SearchResult.load(path)
    assert again == result and type(again.genotype) is type(genotype)
    assert again.genotype == genotype


def test_result_file_is_strict_json_and_a_null_score_reads_back_as_minus_inf(tmp_path):
    rows = [{"genotype": CELL.to_dict(), "score": -math.inf, "order": 0, "seconds": 0.1},
            {"genotype": CELL.to_dict(), "score": 3.0, "order": 1, "seconds": 0.1}]
    result = SearchResult("snasnet", CELL, history=rows, metrics={"score": 3.0})
    path = tmp_path / "r.json"
    result.save(path)
    text = path.read_text()
    assert "Infinity" not in text and json.loads(text)["history"][0]["score"] is None
    again = SearchResult.load(path)
    assert again.history[0]["score"] == -math.inf
    assert [r["order"] for r in again.ranking] == [1, 0]                # best first


def test_old_training_free_file_is_read(tmp_path):
    old = {"method": "evolution", "best": CELL.to_dict(), "seconds": 2.0, "candidates": 2,
           "draws": 3, "settings": {"seed": 1, "batches": 2, "batch_size": 8},
           "ranking": [{"genotype": CELL.to_dict(), "score": 5.0, "order": 1, "seconds": 1.0},
                       {"genotype": {"matrix": [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1],
                                                [0, 0, 0, 0]]},
                        "score": 2.0, "order": 0, "seconds": 1.0}],
           "provenance": {"command": "python -m snnlab search snasnet"}}
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    result = SearchResult.load(path)
    assert result.method == "snasnet" and result.config["strategy"] == "evolution"
    assert result.genotype == CELL and result.best_genotype() == CELL
    assert (result.candidates, result.draws, result.seconds, result.best_score) == (2, 3, 2.0, 5.0)
    assert [r["order"] for r in result.history] == [0, 1]               # scoring order
    assert result.ranking[0]["score"] == 5.0 and result.cost["images_seen"] == 32
    assert result.provenance["command"].startswith("python -m snnlab")


@pytest.mark.parametrize("method,genotype", [("darts", DARTS_V2), ("madarts", DARTS_V2),
                                             ("spikedhs", SPIKEDHS)])
def test_old_differentiable_file_is_read(method, genotype, tmp_path):
    history = [{"epoch": 1, "val_acc": 0.3, "val_nos": 50.0, "nos": 40.0},
               {"epoch": 2, "val_acc": 0.6, "val_nos": 70.0, "nos": 60.0}]
    old = {"method": method, "profile": "tiny", "dataset": "digits", "config": {"epochs": 2},
           "genotype": genotype.to_dict(), "history": history, "seconds": 9.0,
           "device": "cpu", "snnlab_version": "0.1.0", "torch_version": "2"}
    if method == "spikedhs":
        old["dgs_trajectory"] = []
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    result = SearchResult.load(path)
    assert result.method == method and result.genotype == genotype
    assert result.cost == {"seconds": 9.0, "epochs": 2, "images_seen": None}
    assert result.metrics["accuracy"] == 0.6 and result.metrics["spikes"] == 70.0
    assert result.provenance["profile"] == "tiny"
    assert result.to_legacy_dict() == old                        # the old dict, unchanged


def test_result_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        SearchResult.load(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        SearchResult.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="missing field"):
        SearchResult.from_dict({})
    with pytest.raises(ValueError, match="unknown genotype type"):
        SearchResult.from_dict({"format": "snnlab-search-result-1", "method": "x",
                                "genotype_type": "Nope", "genotype": {}})


# ---- the registry ----------------------------------------------------------------------------

def test_every_method_is_registered_with_a_config_from_the_profile():
    assert search_names()[:4] == ["snasnet", "darts", "madarts", "spikedhs"]
    tiny = get_profile("tiny")
    for name in search_names():
        method = get_search(name)
        config = method.config(tiny)
        assert isinstance(config, method.config_cls) and config.seed == tiny.seed
    assert get_search("madarts").config(tiny).attention == "eca"
    assert get_search("darts").config(tiny).attention == "none"
    assert get_search("spikedhs").config(tiny, dgs=True, temporal=True).temporal
    with pytest.raises(ValueError, match="unknown search method 'nas'"):
        get_search("nas")
    with pytest.raises(TypeError, match="unknown SNASNetSearchConfig field"):
        get_search("snasnet").config(tiny, colour=1)


def test_a_user_search_registers_and_leaves():
    darts = get_search("darts")
    mine = dataclasses.replace(darts, name="my_darts", summary="mine")
    register_search(mine)
    try:
        assert get_search("my_darts") is mine and "my_darts" in search_names()
        with pytest.raises(ValueError, match="already registered"):
            register_search(mine)
    finally:
        unregister_search("my_darts")
    assert "my_darts" not in SEARCH_METHODS
    with pytest.raises(TypeError, match="SearchMethod"):
        register_search({"name": "x"})


def test_snasnet_search_through_the_registry_reports_score_and_spikes():
    tiny, bundle = get_profile("tiny"), load_digits()
    method = get_search("snasnet")
    result = method.search(method.config(tiny, candidates=3, batch_size=16), bundle,
                           device="cpu", progress=False)
    assert result.method == "snasnet" and isinstance(result.genotype, CellGenotype)
    assert result.cost["candidates"] == 3 and result.cost["images_seen"] == 3 * 2 * 16
    assert all(row["spikes"] > 0 for row in result.history)
    assert result.metrics["score"] == result.ranking[0]["score"]
    front = pareto_front(candidate_points(result), ("score", "spikes"))
    assert front and all(p in candidate_points(result) for p in front)
    net = method.build_network(result, tiny, bundle)
    assert net(bundle.test[0][0].unsqueeze(0)).shape == (1, 10)


def test_darts_search_through_the_registry_returns_a_search_result(tmp_path):
    tiny, bundle = get_profile("tiny"), load_digits()
    method = get_search("madarts")
    config = method.config(tiny, epochs=1, layers=3, C=2, max_images=48, batch_size=12)
    result = method.search(config, bundle, device="cpu", progress=False)
    assert result.method == "madarts" and isinstance(result.genotype, Genotype)
    assert result.cost["epochs"] == 1 and result.config["attention"] == "eca"
    assert result.metrics["accuracy"] == result.history[-1]["val_acc"]
    assert result.metrics["spikes"] == result.history[-1]["val_nos"] > 0
    result.save(tmp_path / "r.json")
    again = SearchResult.load(tmp_path / "r.json")
    net = method.build_network(again, tiny, bundle)
    assert net(bundle.test[0][0].unsqueeze(0)).shape == (1, 10)


# ---- Pareto ----------------------------------------------------------------------------------

POINTS = [{"name": "a", "accuracy": 0.90, "spikes": 100.0},
          {"name": "b", "accuracy": 0.85, "spikes": 50.0},
          {"name": "c", "accuracy": 0.80, "spikes": 60.0},      # dominated by b
          {"name": "d", "accuracy": 0.90, "spikes": 120.0},     # dominated by a
          {"name": "e", "accuracy": 0.70, "spikes": 10.0},
          {"name": "f", "accuracy": None, "spikes": 1.0}]       # not measured: left out


def test_pareto_front_of_hand_built_points():
    assert [p["name"] for p in pareto_front(POINTS)] == ["a", "b", "e"]
    # maximising spikes instead (say, a firing-rate target) flips the front
    assert [p["name"] for p in pareto_front(POINTS, maximize=("accuracy", "spikes"))] == ["d"]
    twins = [{"accuracy": 1.0, "spikes": 1.0}, {"accuracy": 1.0, "spikes": 1.0}]
    assert len(pareto_front(twins)) == 2                             # equal points both stay
    assert [p["name"] for p in pareto_front(POINTS, ("accuracy",))] == ["a", "d"]


def test_pick_takes_the_most_accurate_within_the_budget():
    assert pick(POINTS)["name"] == "a"
    assert pick(POINTS, budget={"spikes": 80})["name"] == "b"
    assert pick(POINTS, budget={"spikes": 20})["name"] == "e"
    assert pick(POINTS, ("spikes", "accuracy"))["name"] == "e"      # fewest spikes first
    with pytest.raises(ValueError, match="no point meets the budget"):
        pick(POINTS, budget={"spikes": 5})


def test_pareto_front_reads_search_results_metrics():
    results = [SearchResult("x", {}, metrics={"accuracy": 0.9, "spikes": 10.0}),
               SearchResult("y", {}, metrics={"accuracy": 0.8, "spikes": 20.0})]
    assert pareto_front(results) == results[:1]
    with pytest.raises(ValueError, match="objectives"):
        pareto_front(results, objectives="accuracy")
