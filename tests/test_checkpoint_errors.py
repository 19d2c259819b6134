"""Broken checkpoint and result files fail with ONE line naming the file and what is wrong.

For every learned solver (mlp, uwmmse, wcgcn in both families, unfolded_wmmse, pgd_wmmse, structured_net) a
good checkpoint is saved, then damaged the ways files get damaged (cut short, emptied, overwritten, written
by another solver or another format version, edited to another shape), and loaded both ways the library
loads one (``Cls.load(path)`` and ``solvers.make(name, checkpoint=path)``).
"""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch

import solvers
from l2o_env.evaluation.results import FORMAT as RESULT_FORMAT
from l2o_env.evaluation.results import EvaluationResult
from solvers.learned import FORMAT
from solvers.registry import factory

# name -> keyword arguments that give a model with real weights, quickly
SOLVERS = {
    "mlp": {"pretrained": True},
    "uwmmse": {"pretrained": True},
    "wcgcn": {"pretrained": True},
    "wcgcn-bf": {"pretrained": "bf"},
    "unfolded_wmmse": {"pretrained": True},
    "pgd_wmmse": {},
    "structured_net": {"pretrained": True},
}


def _name(key: str) -> str:
    return key.split("-")[0]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """One good checkpoint per solver: ``{key: (path, payload)}``."""
    folder = tmp_path_factory.mktemp("good")
    out = {}
    for key, kwargs in SOLVERS.items():
        path = solvers.make(_name(key), **kwargs).save(folder / f"{key}.pt")
        out[key] = (path, torch.load(path, weights_only=True))
    return out


def _load_both_ways(name: str, path, match: str, error=ValueError) -> list[str]:
    """Load ``path`` with ``Cls.load`` and ``solvers.make(name, checkpoint=path)``; both must raise
    ``error`` with one line holding the file name and ``match``."""
    messages = []
    for load in (lambda: factory(name).load(path), lambda: solvers.make(name, checkpoint=path)):
        with pytest.raises(error) as info:
            load()
        text = str(info.value)
        assert "\n" not in text, f"not one line: {text!r}"
        assert str(path) in text, f"the file is not named: {text!r}"
        assert re.search(match, text), f"{match!r} not in {text!r}"
        assert len(text) < 400, f"too long for one line: {text!r}"
        messages.append(text)
    return messages


def _with(payload: dict, **changes) -> dict:
    out = {**payload, **changes}
    out["state_dict"] = dict(out["state_dict"])
    return out


@pytest.mark.parametrize("key", list(SOLVERS))
def test_the_good_file_loads(saved, key):
    path, _ = saved[key]
    a = factory(_name(key)).load(path)
    b = solvers.make(_name(key), checkpoint=path)
    for (k1, v1), (k2, v2) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert k1 == k2 and torch.equal(v1, v2)


@pytest.mark.parametrize("key", list(SOLVERS))
@pytest.mark.parametrize("fraction", [0.0005, 0.5, 0.999])
def test_a_truncated_file(saved, key, fraction, tmp_path):
    path, _ = saved[key]
    data = path.read_bytes()
    cut = tmp_path / "cut.pt"
    cut.write_bytes(data[: max(1, int(len(data) * fraction))])
    _load_both_ways(_name(key), cut, r"not a readable checkpoint: truncated or not a torch file \(.+\)")


@pytest.mark.parametrize("key", ["mlp", "structured_net"])
def test_an_empty_file_and_garbage(key, tmp_path):
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    _load_both_ways(_name(key), empty, r"the file is empty \(0 bytes")
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).bytes(5000))
    _load_both_ways(_name(key), garbage, r"truncated or not a torch file")
    text = tmp_path / "text.pt"
    text.write_text("not a checkpoint\n")
    _load_both_ways(_name(key), text, r"truncated or not a torch file")


@pytest.mark.parametrize("key", list(SOLVERS))
def test_another_solvers_checkpoint(saved, key):
    other = "wcgcn" if _name(key) != "wcgcn" else "mlp"
    path, _ = saved[other]
    _load_both_ways(_name(key), path, rf"checkpoint holds a '{other}' model, not '{_name(key)}'; "
                                      rf"load it with solvers.make\('{other}', checkpoint=\.\.\.\)")


@pytest.mark.parametrize("key", list(SOLVERS))
def test_another_format_version(saved, key, tmp_path):
    _, payload = saved[key]
    bad = tmp_path / "v9.pt"
    torch.save(_with(payload, format="l2o_env.solver/9"), bad)
    _load_both_ways(_name(key), bad, re.escape(f"format 'l2o_env.solver/9' is not supported (this version reads "
                                               f"{FORMAT})"))
    no_format = tmp_path / "noformat.pt"
    torch.save({k: v for k, v in payload.items() if k != "format"}, no_format)
    _load_both_ways(_name(key), no_format, r"not an l2o_env solver checkpoint \(a dict without 'format'")


def _first_weight(payload: dict) -> str:
    return next(k for k, v in payload["state_dict"].items() if v.ndim >= 1 and v.is_floating_point())


@pytest.mark.parametrize("key", list(SOLVERS))
def test_a_weight_of_another_shape(saved, key, tmp_path):
    _, payload = saved[key]
    name = _first_weight(payload)
    good = payload["state_dict"][name]
    grown = torch.zeros((good.shape[0] + 3, *good.shape[1:]), dtype=good.dtype)
    bad = _with(payload)
    bad["state_dict"][name] = grown
    torch.save(bad, tmp_path / "shape.pt")
    _load_both_ways(_name(key), tmp_path / "shape.pt", re.escape(
        f"the weights do not match the config: weight '{name}' has shape {tuple(grown.shape)} in the file but "
        f"{tuple(good.shape)} in a solver built from its config"))


def test_a_config_that_builds_another_shape(saved, tmp_path):
    """The usual way shapes disagree: a config edited (or mixed up) after training."""
    _, payload = saved["mlp"]
    bad = _with(payload, config={**payload["config"], "hidden": (7, 7, 7)})
    torch.save(bad, tmp_path / "cfg.pt")
    _load_both_ways("mlp", tmp_path / "cfg.pt", r"weight '[^']+' has shape \(\d+(, \d+)*\) in the file but "
                                                r"\(7(, \d+)*\) in a solver built from its config")


@pytest.mark.parametrize("key", ["uwmmse", "structured_net"])
def test_missing_and_unexpected_weights(saved, key, tmp_path):
    _, payload = saved[key]
    name = _first_weight(payload)
    missing = _with(payload)
    del missing["state_dict"][name]
    torch.save(missing, tmp_path / "missing.pt")
    _load_both_ways(_name(key), tmp_path / "missing.pt", re.escape(f"do not match the config: missing '{name}'"))
    extra = _with(payload)
    extra["state_dict"]["surplus.weight"] = torch.zeros(3)
    torch.save(extra, tmp_path / "extra.pt")
    _load_both_ways(_name(key), tmp_path / "extra.pt", r"do not match the config: unexpected 'surplus\.weight'")


@pytest.mark.parametrize("key", ["mlp", "wcgcn-bf", "unfolded_wmmse"])
def test_non_finite_weights(saved, key, tmp_path):
    _, payload = saved[key]
    name = _first_weight(payload)
    bad = _with(payload)
    bad["state_dict"][name] = bad["state_dict"][name].clone()
    bad["state_dict"][name].view(-1)[:2] = float("nan")
    torch.save(bad, tmp_path / "nan.pt")
    _load_both_ways(_name(key), tmp_path / "nan.pt", re.escape(f"damaged checkpoint: weight '{name}' holds 2 NaN/inf "
                                                              f"values"))


def test_configs_this_version_cannot_rebuild(saved, tmp_path):
    _, payload = saved["wcgcn"]
    torch.save(_with(payload, config={**payload["config"], "new_knob": 1}), tmp_path / "newer.pt")
    _load_both_ways("wcgcn", tmp_path / "newer.pt", r"config has fields this version does not know: new_knob "
                                                    r"\(a checkpoint of a newer version\?\)")
    torch.save(_with(payload, config={**payload["config"], "problem": "scheduling"}), tmp_path / "invalid.pt")
    _load_both_ways("wcgcn", tmp_path / "invalid.pt", r"config cannot be rebuilt by this version \(ValueError: .*problem")


def test_payloads_of_the_wrong_kind(saved, tmp_path):
    _, payload = saved["mlp"]
    torch.save([1, 2, 3], tmp_path / "list.pt")
    _load_both_ways("mlp", tmp_path / "list.pt", r"not an l2o_env solver checkpoint \(it holds a list")
    torch.save(payload["state_dict"], tmp_path / "bare.pt")  # a bare state_dict, as torch tutorials save
    _load_both_ways("mlp", tmp_path / "bare.pt", r"a dict without 'format'")
    torch.save(_with(payload, config=[1]), tmp_path / "cfg.pt")
    _load_both_ways("mlp", tmp_path / "cfg.pt", r"damaged checkpoint: 'config' is a list, not a dict")
    no_weights = {k: v for k, v in payload.items() if k != "state_dict"}
    torch.save(no_weights, tmp_path / "noweights.pt")
    _load_both_ways("mlp", tmp_path / "noweights.pt", r"damaged checkpoint: 'state_dict' is missing")


class _Foreign:
    pass


def test_a_pickle_of_python_objects(tmp_path):
    torch.save({"format": FORMAT, "solver": "mlp", "model": _Foreign()}, tmp_path / "obj.pt")
    _load_both_ways("mlp", tmp_path / "obj.pt", r"holds Python objects that a weights-only load refuses "
                                                r"\(Unsupported global: GLOBAL .*_Foreign\)")


def test_a_folder_and_a_missing_file(tmp_path):
    _load_both_ways("mlp", tmp_path, r"is a folder, not a checkpoint file")
    _load_both_ways("mlp", tmp_path / "nothing.pt", r"no checkpoint file at", error=FileNotFoundError)


# --- result files ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def result_file(tmp_path_factory):
    from l2o_env.evaluation import evaluate

    folder = tmp_path_factory.mktemp("result")
    json_path, _ = evaluate(["wmmse", "max_power"], "PowerControl-IC-v0", slots=20, seed=0).save(folder / "r.json")
    return json_path


def _load_result_fails(path, match: str) -> None:
    with pytest.raises(ValueError) as info:
        EvaluationResult.load(path)
    text = str(info.value)
    assert "\n" not in text and str(path) in text and re.search(match, text), text


def test_the_result_file_loads(result_file):
    assert EvaluationResult.load(result_file).solvers == ["wmmse", "max_power"]


@pytest.mark.parametrize("fraction", [0.0, 0.01, 0.5, 0.99])
def test_a_truncated_result_file(result_file, fraction, tmp_path):
    data = result_file.read_bytes()
    cut = tmp_path / "cut.json"
    cut.write_bytes(data[: int(len(data) * fraction)])
    _load_result_fails(cut, r"is not JSON \(")


def test_garbage_result_files(result_file, tmp_path):
    garbage = tmp_path / "garbage.json"
    garbage.write_bytes(np.random.default_rng(1).bytes(3000))
    _load_result_fails(garbage, r"is not JSON \(")
    csv_as_json = tmp_path / "r.json"
    csv_as_json.write_bytes(result_file.with_suffix(".csv").read_bytes())
    _load_result_fails(csv_as_json, r"is not JSON \(")
    other = tmp_path / "other.json"
    other.write_text('{"format": "something/1"}\n')
    _load_result_fails(other, re.escape(f"is not an l2o_env evaluation result (format {RESULT_FORMAT!r} expected, "
                                        f"got 'something/1')"))


@pytest.mark.parametrize("damage", ["rows", "config", "row_type", "per_slot"])
def test_damaged_result_files_name_the_damage(result_file, damage, tmp_path):
    import json

    data = json.loads(result_file.read_text())
    if damage in ("rows", "config"):
        del data[damage]
        match = f"is damaged: missing key '{damage}'"
    elif damage == "row_type":
        data["rows"] = [1, 2]
        match = "is damaged: "
    else:
        data["per_slot_sum_rate"] = [{"solver": "wmmse"}]
        match = "is damaged: missing key 'sweep_value'"
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(data))
    _load_result_fails(bad, re.escape(match))
