"""Atomic writes (l2o_env.atomic): an interrupted write leaves the old file intact and no temporary file.

Interruptions are simulated by writers that raise midway (after writing part of the new content), and by
monkeypatching ``torch.save`` / the JSON and CSV writers of the result files / ``os.replace`` to raise.
"""

from __future__ import annotations

import copy
import io
import os
import stat

import numpy as np
import pytest
import torch

import solvers
from l2o_env.atomic import atomic_open, atomic_path, atomic_write
from l2o_env.evaluation.results import EvaluationResult
from solvers.registry import factory


class Interrupted(Exception):
    pass


def _listing(folder):
    return sorted(p.name for p in folder.iterdir())


def test_atomic_write_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "a.txt"
    assert atomic_write(path, "one\n") == path
    assert path.read_text() == "one\n"
    atomic_write(path, b"two\n")
    assert path.read_bytes() == b"two\n"
    atomic_write(path, lambda f: f.write(b"three\n"))
    assert path.read_bytes() == b"three\n"
    with atomic_open(path, "w", newline="") as f:
        f.write("four\r\n")
    assert path.read_bytes() == b"four\r\n"
    assert _listing(tmp_path) == ["a.txt"]


@pytest.mark.parametrize("how", ["callable", "atomic_open", "atomic_path", "keyboard_interrupt"])
def test_an_interrupted_write_keeps_the_old_file_and_removes_the_temporary(tmp_path, how):
    path = tmp_path / "data.bin"
    path.write_bytes(b"old content")
    error = KeyboardInterrupt if how == "keyboard_interrupt" else Interrupted

    def half_then_fail(f):
        f.write(b"new cont")  # part of the new content reaches the temporary file
        f.flush()
        raise error("interrupted midway")

    with pytest.raises(error):
        if how in ("callable", "keyboard_interrupt"):
            atomic_write(path, half_then_fail)
        elif how == "atomic_open":
            with atomic_open(path, "wb") as f:
                half_then_fail(f)
        else:
            with atomic_path(path) as tmp:
                with open(tmp, "wb") as f:
                    half_then_fail(f)
    assert path.read_bytes() == b"old content"
    assert _listing(tmp_path) == ["data.bin"]


def test_an_interrupted_first_write_leaves_no_file(tmp_path):
    def write_then_fail(f):
        f.write(b"x")
        raise Interrupted

    with pytest.raises(Interrupted):
        atomic_write(tmp_path / "new.txt", write_then_fail)
    assert _listing(tmp_path) == []


def test_a_failed_rename_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "a.txt"
    path.write_text("old")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        atomic_write(path, "new")
    assert path.read_text() == "old"
    assert _listing(tmp_path) == ["a.txt"]


def test_the_temporary_file_is_beside_the_destination_with_its_suffix(tmp_path):
    path = tmp_path / "plot.png"
    with atomic_path(path) as tmp:
        assert tmp.parent == path.parent and tmp.suffix == ".png" and tmp.name.startswith(".plot.")
        assert not tmp.exists()
        tmp.write_bytes(b"png")
    assert path.read_bytes() == b"png" and not tmp.exists()


def test_a_writer_that_writes_elsewhere_is_an_error_and_cleans_up(tmp_path):
    path = tmp_path / "model"
    path.write_bytes(b"old")
    with pytest.raises(FileNotFoundError, match="did not create the temporary file"):
        with atomic_path(path) as tmp:
            tmp.with_name(tmp.name + ".zip").write_bytes(b"new")  # what a writer appending a suffix does
    assert path.read_bytes() == b"old"
    assert _listing(tmp_path) == ["model"]


def test_permissions_follow_open_for_new_files_and_are_kept_for_replaced_ones(tmp_path):
    mask = os.umask(0o022)
    os.umask(mask)
    fresh = atomic_write(tmp_path / "fresh.txt", "x")
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o666 & ~mask
    kept = tmp_path / "kept.txt"
    kept.write_text("x")
    os.chmod(kept, 0o600)
    atomic_write(kept, "y")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600 and kept.read_text() == "y"


def test_a_symlink_is_written_through(tmp_path):
    target = tmp_path / "real.txt"
    target.write_text("old")
    link = tmp_path / "link.txt"
    link.symlink_to(target)
    atomic_write(link, "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_bad_arguments_are_refused(tmp_path):
    with pytest.raises(ValueError, match="mode must be one of"):
        with atomic_open(tmp_path / "a", "a"):
            pass
    with pytest.raises(TypeError, match="bytes need mode 'wb'"):
        atomic_write(tmp_path / "a", b"x", "w")
    with pytest.raises(TypeError, match="needs a text mode"):
        atomic_write(tmp_path / "a", "x", "wb")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        atomic_write(tmp_path / "missing" / "a", "x")
    assert _listing(tmp_path) == []


# --- the library's writers -------------------------------------------------------------------------
def test_solver_save_interrupted_in_torch_save_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "mlp.pt"
    solvers.make("mlp", pretrained=True).save(path)
    good = path.read_bytes()
    real_save = torch.save

    def save_half(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)
        f.truncate(f.tell() // 2)  # the first half of the new file is on disk, then the process dies
        raise Interrupted("killed during torch.save")

    monkeypatch.setattr(torch, "save", save_half)
    other = solvers.make("mlp", pretrained="ic10")  # a different model: the old file must not change
    with pytest.raises(Interrupted):
        other.save(path)
    assert path.read_bytes() == good
    assert _listing(tmp_path) == ["mlp.pt"]
    monkeypatch.setattr(torch, "save", real_save)
    back = factory("mlp").load(path)
    assert back.config == solvers.make("mlp", pretrained=True).config


def test_solver_save_writes_a_file_that_loads(tmp_path):
    s = solvers.make("uwmmse", pretrained=True)
    path = s.save(tmp_path / "sub" / "u.pt")
    assert _listing(path.parent) == ["u.pt"]
    back = factory("uwmmse").load(path)
    for (k, v), (k2, v2) in zip(s.model.state_dict().items(), back.model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


_RESULT = None


def _result() -> EvaluationResult:
    """A small real evaluation (a fresh copy on every call)."""
    global _RESULT
    if _RESULT is None:
        from l2o_env.evaluation import evaluate

        _RESULT = evaluate(["wmmse", "max_power"], "PowerControl-IC-v0", slots=20, seed=0, progress=False)
    return copy.deepcopy(_RESULT)


class _DyingFile:
    """A file object whose first ``write`` writes half of its data, flushes it and raises (a killed process)."""

    def __init__(self, f):
        self._f = f

    def write(self, data):
        self._f.write(data[: len(data) // 2])
        self._f.flush()
        raise Interrupted("killed while writing")

    def __getattr__(self, name):
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()


@pytest.mark.parametrize("writer", ["json", "csv"])
def test_result_save_interrupted_keeps_the_old_files(tmp_path, monkeypatch, writer):
    result = _result()
    json_path, csv_path = result.save(tmp_path / "r.json")
    old = {p.name: p.read_bytes() for p in (json_path, csv_path)}
    changed = _result()
    changed.rows[0]["mean_wsr"] = 9.0
    # every way of opening a file for writing (open, Path.open, os.fdopen) goes through io.open; the JSON is
    # written first, then the CSV: the opens for writing before the victim pass, the victim dies midway
    real_open = io.open
    victim = {"json": 1, "csv": 2}[writer]
    opened = []

    def open_and_die(file, mode="r", *args, **kwargs):
        f = real_open(file, mode, *args, **kwargs)
        if "w" in mode:
            opened.append(file)
            if len(opened) == victim:
                return _DyingFile(f)
        return f

    monkeypatch.setattr(io, "open", open_and_die)
    with pytest.raises(Interrupted):
        changed.save(tmp_path / "r.json")
    monkeypatch.undo()
    assert len(opened) == victim
    # an interrupted CSV leaves the new JSON (complete) and the old CSV; an interrupted JSON both old ones
    if writer == "json":
        assert json_path.read_bytes() == old["r.json"]
    assert csv_path.read_bytes() == old["r.csv"]
    assert _listing(tmp_path) == ["r.csv", "r.json"]
    back = EvaluationResult.load(json_path)
    assert back.row("wmmse")["mean_wsr"] == (changed if writer == "csv" else result).row("wmmse")["mean_wsr"]


def test_plot_is_written_atomically(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    path = tmp_path / "r.png"
    out = _result().plot(path)
    assert out == path and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    good = path.read_bytes()

    def savefig_half(self, fname, **kwargs):
        with open(fname, "wb") as f:
            f.write(b"\x89PNG")
        raise Interrupted("killed in savefig")

    monkeypatch.setattr(Figure, "savefig", savefig_half)
    with pytest.raises(Interrupted):
        _result().plot(path)
    assert path.read_bytes() == good
    assert _listing(tmp_path) == ["r.png"]
