"""The ``l2o`` command: end to end through a subprocess, and its error handling in-process (fast)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from l2o_env.cli import main


def _run(*args, timeout=120):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "l2o_env.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env=env)


def test_eval_end_to_end_writes_json_csv_and_png(tmp_path):
    out, png = tmp_path / "new" / "imac.json", tmp_path / "figs" / "imac.png"
    proc = _run("eval", "--env", "PowerControl-IMAC-v0", "--solvers", "truncated_wmmse,max_power,random_power",
                "--slots", "60", "--seed", "0", "--env-kwargs", "num_cells=3,num_links=12",
                "--solver-kwargs", "truncated_wmmse.iterations=2", "--out", str(out), "--plot", str(png))
    assert proc.returncode == 0, proc.stderr
    assert "ratio to wmmse" in proc.stdout and "added automatically" in proc.stdout
    data = json.loads(out.read_text())
    assert data["config"]["env_id"] == "PowerControl-IMAC-v0" and data["config"]["slots"] == 60
    assert data["config"]["env_kwargs"] == {"num_cells": 3, "num_links": 12}
    assert {r["solver"] for r in data["rows"]} == {"truncated_wmmse", "max_power", "random_power", "wmmse"}
    assert out.with_suffix(".csv").read_text().count("\n") == 5
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_eval_sweep_end_to_end_and_rerun(tmp_path, capsys):
    out, png = tmp_path / "speed.json", tmp_path / "speed.png"
    assert main(["eval", "--env", "PowerControl-IC-v0", "--solvers", "wmmse,max_power", "--slots", "20",
                 "--env-kwargs", "num_links=4", "--sweep", "speed=0,3,30", "--out", str(out), "--plot", str(png),
                 "--no-progress"]) == 0
    first = capsys.readouterr().out
    assert "speed" in first and png.stat().st_size > 5000
    assert main(["eval", "--rerun", str(out), "--no-progress"]) == 0
    again = capsys.readouterr().out
    assert main(["eval", "--rerun", str(out), "--solvers", "wmmse"]) == 2
    assert "--solvers" in capsys.readouterr().err
    # the same numbers come back (the table's timing column may differ)
    rows = [line.split()[:5] for line in first.splitlines() if line.startswith(("wmmse", "max_power"))]
    rows2 = [line.split()[:5] for line in again.splitlines() if line.startswith(("wmmse", "max_power"))]
    assert rows == rows2 and len(rows) == 6


def test_list_shows_envs_and_solvers(capsys):
    assert main(["list"]) == 0
    text = capsys.readouterr().out
    for name in ("PowerControl-IC-v0", "PowerControl-IMAC-v0", "PowerControl-AdHoc-v0", "PowerControl-D2D-v0",
                 "wmmse", "max_power", "speed"):
        assert name in text
    # plain text for a terminal: no Sphinx roles or RST literals, no pointers to files users lack
    for mark in ("``", ":class:", ":func:", ":meth:", ":mod:", "seeds/", "seed 00", "shared/"):
        assert mark not in text, mark


def _one_line_error(capsys, argv):
    with pytest.raises(SystemExit) as exc:
        code = main(argv)
        raise SystemExit(code)
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert err.count("\n") == 1 and "error" in err and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["eval", "--env", "PowerControl-IC-v0", "--solvers", "max_power", "--bogus"], "--bogus"),
        (["eval", "--env", "PowerControl-IC-v0", "--solvers", "maxpower"], "max_power"),
        (["eval", "--env", "PowerControl-ICC-v0", "--solvers", "max_power"], "PowerControl-IC-v0"),
        (["eval", "--env", "PowerControl-IC-v0", "--solvers", "max_power", "--env-kwargs", "num_linkz=3"], "num_linkz"),
        (["eval", "--env", "PowerControl-IC-v0", "--solvers", "max_power", "--env-kwargs", "num_links"], "KEY=VALUE"),
        (["eval", "--env", "PowerControl-IC-v0", "--solvers", "max_power", "--sweep", "speed"], "--sweep"),
        (["eval", "--env", "PowerControl-IC-v0", "--solvers", "max_power", "--sweep", "colour=1,2"], "knob"),
        (["eval", "--env", "PowerControl-IC-v0", "--solvers", "wmmse,max_power", "--solver-kwargs", "wmmse.foo=1"], "foo"),
        (["eval", "--env", "PowerControl-IC-v0", "--solvers", "max_power", "--slots", "ten"], "--slots"),
        (["eval", "--env", "PowerControl-IC-v0", "--solvers", "max_power", "--out", "r.csv"], ".json"),
        (["eval", "--solvers", "max_power"], "--env"),
        (["eval", "--env", "PowerControl-IC-v0", "--solvers", "max_power", "--slots", "0"], "--slots"),
        (["eval", "--rerun", "no/such/file.json"], "no such file"),
        (["train", "max_power", "--env", "PowerControl-IC-v0"], "fit"),
        (["train", "mlp", "--env", "PowerControl-IC-v0", "--env-kwargs", "num_links=5",
          "--solver-kwargs", "pretrained=ic10"], "K = 5"),
        (["train", "mlp", "--env", "PowerControl-IC-v0", "--solver-kwargs", "nope=1"], "nope"),
        (["frobnicate"], "frobnicate"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(capsys, argv, needle):
    assert needle in _one_line_error(capsys, argv)


def test_unwritable_output_exits_2(capsys, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")  # a file where a folder should be: mkdir fails whoever runs the test
    err = _one_line_error(capsys, ["eval", "--env", "PowerControl-IC-v0", "--solvers", "max_power",
                                   "--out", str(blocker / "sub" / "r.json")])
    assert "--out" in err


def test_subprocess_error_is_one_line_exit_2():
    proc = _run("eval", "--env", "PowerControl-IC-v0", "--solvers", "nonexistent_solver", "--slots", "4")
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "nonexistent_solver" in proc.stderr


def test_train_saves_a_checkpoint_that_eval_loads(tmp_path, capsys):
    ckpt = tmp_path / "ck" / "uwmmse.pt"
    assert main(["train", "uwmmse", "--env", "PowerControl-AdHoc-v0", "--env-kwargs", "num_links=5", "--steps", "3",
                 "--solver-kwargs", "val_size=32,batch_size=8", "--out", str(ckpt), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ratio to wmmse" in out and "1000 fresh samples" in out and ckpt.stat().st_size > 0
    import solvers as solver_registry

    meta = solver_registry.make("uwmmse", checkpoint=ckpt).meta  # the command that reproduces it is recorded
    assert meta["command"].startswith("l2o train uwmmse --env PowerControl-AdHoc-v0") and str(ckpt) in meta["command"]
    res = tmp_path / "uw.json"
    assert main(["eval", "--env", "PowerControl-AdHoc-v0", "--env-kwargs", "num_links=5", "--solvers", "uwmmse",
                 "--solver-kwargs", f"uwmmse.checkpoint={ckpt}", "--slots", "16", "--out", str(res),
                 "--no-progress"]) == 0
    solvers = json.loads(res.read_text())["config"]["solvers"]
    assert solvers[0]["kwargs"] == {"checkpoint": str(ckpt)}


def test_list_survives_a_solver_that_cannot_be_imported(capsys, monkeypatch):
    from solvers import registry

    monkeypatch.setitem(registry._BUILTIN, "broken_plugin", "solvers.no_such_module:Nothing")
    assert main(["list"]) == 0
    line = [l for l in capsys.readouterr().out.splitlines() if "broken_plugin" in l]
    assert len(line) == 1 and "cannot be imported" in line[0] and "no_such_module" in line[0]


def test_eval_with_aged_csi_adds_the_genie_row_and_says_so(tmp_path, capsys):
    out = tmp_path / "aged.json"
    assert main(["eval", "--env", "PowerControl-IC-v0", "--env-kwargs", "num_links=4,csi_delay=1",
                 "--solvers", "wmmse,wmmse_predictive,max_power", "--slots", "12", "--out", str(out),
                 "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "ratio to wmmse (perfect CSI)" in text and "is the genie row" in text
    assert "was not among --solvers" not in text
    rows = json.loads(out.read_text())["rows"]
    assert [r["solver"] for r in rows] == ["wmmse", "wmmse_predictive", "max_power", "wmmse (perfect CSI)"]
    assert main(["eval", "--env", "PowerControl-IC-v0", "--env-kwargs", "num_links=4,csi_error=0.2",
                 "--solvers", "max_power", "--reference", "wmmse", "--slots", "8", "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "ratio to wmmse +/-" in text and "wmmse was not among --solvers" in text and "wmmse (perfect CSI)" in text
