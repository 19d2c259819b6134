"""The result of :func:`l2o_env.evaluation.evaluate`: a tidy table plus the configuration that made it.

Saved as two files with the same stem: ``NAME.json`` (format ``l2o_env.evaluation/1``: ``config``, the
column meanings, ``rows`` and the per-slot sum rates behind the CDF plot) and ``NAME.csv`` (the rows
alone, one per solver x sweep point). The JSON's ``config`` holds everything needed to run the table
again (:func:`l2o_env.evaluation.rerun`): env ID and keywords, seed, slots and their split, sweep,
solver names and keywords, and the library versions.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["EvaluationResult", "COLUMNS", "FORMAT", "jsonable"]

FORMAT = "l2o_env.evaluation/1"

#: Columns of the tidy table, with their meaning and unit.
COLUMNS: dict[str, str] = {
    "env_id": "Gymnasium env ID",
    "sweep_knob": "the knob varied across rows ('' when nothing is swept)",
    "sweep_value": "its value at this row (speed in m/s, density factor, or number of links K)",
    "solver": "solver label",
    "mean_wsr": "mean weighted sum rate per slot, bit/s/Hz",
    "std_wsr": "standard deviation of the weighted sum rate over slots, bit/s/Hz",
    "mean_sum_rate": "mean unweighted sum rate per slot, bit/s/Hz",
    "ratio_to_wmmse": "mean_wsr / mean_wsr of wmmse on the same channels (ratio of means)",
    "p5_user_rate": "5th percentile over users of the episode-averaged user rate, bit/s/Hz",
    "time_per_slot_s": "solver wall-clock seconds per slot (batched calls / slots)",
    "clipped_fraction": "fraction of slots whose action left [0, pmax] and was clipped",
    "slots": "slots evaluated (episodes x episode_length)",
    "note": "'reference' for the wmmse row; '(added automatically)' when it was not asked for",
}


def jsonable(value: Any) -> Any:
    """Plain JSON types: tuples -> lists, numpy scalars/arrays -> Python, NaN/inf -> None, paths -> str."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, np.generic):
        return jsonable(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, (str, int, bool)) or value is None:
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    return repr(value)


@dataclasses.dataclass
class EvaluationResult:
    """Rows (one per solver x sweep point, keys :data:`COLUMNS`), the config, the per-slot sum rates.

    Attributes:
        rows: list of dicts with the keys of :data:`COLUMNS`.
        config: env ID and kwargs, seed, slots, episodes, episode_length, sweep, solvers (label, name,
            kwargs, class), reference, versions.
        per_slot_sum_rate: ``{(solver label, sweep value): (slots,) array}`` of unweighted sum rates, bit/s/Hz.
    """

    rows: list[dict]
    config: dict
    per_slot_sum_rate: dict[tuple[str, Any], np.ndarray] = dataclasses.field(default_factory=dict)

    # --- access ----------------------------------------------------------------------------------
    @property
    def solvers(self) -> list[str]:
        return list(dict.fromkeys(r["solver"] for r in self.rows))

    @property
    def sweep_values(self) -> list[Any]:
        return list(dict.fromkeys(_key(r["sweep_value"]) for r in self.rows))

    def row(self, solver: str, sweep_value: Any = None) -> dict:
        """The row of ``solver`` at ``sweep_value`` (``None`` when nothing is swept)."""
        for r in self.rows:
            if r["solver"] == solver and _key(r["sweep_value"]) == _key(sweep_value):
                return r
        raise KeyError(f"no row for solver={solver!r}, sweep_value={sweep_value!r}; "
                       f"solvers {self.solvers}, sweep values {self.sweep_values}")

    def column(self, name: str, solver: str) -> list:
        """``name`` of ``solver`` at every sweep point, in sweep order."""
        if name not in COLUMNS:
            raise KeyError(f"unknown column {name!r}; columns: {list(COLUMNS)}")
        return [r[name] for r in self.rows if r["solver"] == solver]

    # --- text ------------------------------------------------------------------------------------
    def table(self) -> str:
        """A fixed-width table for the terminal (the CSV has every column at full precision)."""
        knob = self.config.get("sweep") and self.config["sweep"]["knob"]
        header = ["solver"] + ([f"{knob}"] if knob else []) + [
            "WSR", "sum rate", "ratio to WMMSE", "p5 user rate", "ms/slot", "clipped", "slots", "note"]
        lines = []
        for r in self.rows:
            line = [r["solver"]] + ([_fmt_value(r["sweep_value"])] if knob else []) + [
                _num(r["mean_wsr"], ".3f"), _num(r["mean_sum_rate"], ".3f"), _pct(r["ratio_to_wmmse"], 2),
                _num(r["p5_user_rate"], ".4g"), _num(1e3 * r["time_per_slot_s"], ".4f"),
                _pct(r["clipped_fraction"], 1), str(r["slots"]), _short(r["note"])]
            lines.append(line)
        widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(header)]
        left = {0, len(header) - 1}

        def fmt(cells):
            return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        from l2o_env.evaluation.plots import _shown_kwargs

        cfg = self.config
        kw = ", ".join(f"{k}={v}" for k, v in _shown_kwargs(cfg).items())
        title = (f"{cfg['env_id']}({kw})  seed={cfg['seed']}  {cfg['episodes']} episode(s) x {cfg['episode_length']} "
                 f"step(s) per point; rates in bit/s/Hz")
        rule = "-" * max(len(fmt(header)), 20)
        return "\n".join([title, fmt(header), rule] + [fmt(l) for l in lines])

    def __str__(self) -> str:
        return self.table()

    # --- files -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        per_slot = [{"solver": s, "sweep_value": jsonable(v), "sum_rate": [float(f"{x:.6g}") for x in arr]}
                    for (s, v), arr in self.per_slot_sum_rate.items()]
        return {"format": FORMAT, "config": jsonable(self.config), "columns": COLUMNS,
                "rows": jsonable(self.rows), "per_slot_sum_rate": per_slot}

    def to_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")
        return path

    def to_csv(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        with path.open("w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(COLUMNS))
            w.writeheader()
            for r in self.rows:
                cells = {k: _csv_cell(r[k]) for k in COLUMNS}
                if not r["sweep_knob"]:
                    cells["sweep_value"] = ""  # nothing swept ("none" would read as speed=None)
                w.writerow(cells)
        return path

    def save(self, path: str | os.PathLike) -> tuple[Path, Path]:
        """Write ``path`` (``.json`` added when missing) and the CSV with the same stem; makes the folder."""
        path = Path(path)
        if path.suffix.lower() != ".json":
            path = path.with_name(path.name + ".json")
        path.parent.mkdir(parents=True, exist_ok=True)
        return self.to_json(path), self.to_csv(path.with_suffix(".csv"))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "EvaluationResult":
        """Read a JSON written by :meth:`save` (the per-slot sum rates come back as arrays)."""
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise FileNotFoundError(f"EvaluationResult.load: no file at {path}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ValueError(f"EvaluationResult.load: {path} is not JSON ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError(f"EvaluationResult.load: {path} is not an l2o_env evaluation result "
                             f"(format {FORMAT!r} expected)")
        rows = [{k: (float("nan") if v is None and k in _FLOAT_COLUMNS else v) for k, v in r.items()}
                for r in data["rows"]]
        per_slot = {(d["solver"], _key(d["sweep_value"])): np.asarray(d["sum_rate"], dtype=np.float64)
                    for d in data.get("per_slot_sum_rate", [])}
        return cls(rows=rows, config=data["config"], per_slot_sum_rate=per_slot)

    def plot(self, path: str | os.PathLike) -> Path:
        """PNG: ratio to WMMSE against the swept knob, or the CDF of the per-slot sum rate (no sweep)."""
        from l2o_env.evaluation.plots import plot_result

        return plot_result(self, path)


_FLOAT_COLUMNS = {"mean_wsr", "std_wsr", "mean_sum_rate", "ratio_to_wmmse", "p5_user_rate", "time_per_slot_s",
                  "clipped_fraction"}


def _key(value: Any) -> Any:
    """Sweep values as dict keys: JSON lists back to tuples."""
    return tuple(value) if isinstance(value, list) else value


def _csv_cell(value: Any) -> Any:
    if value is None:
        return "none"
    if isinstance(value, tuple):
        return ":".join(str(v) for v in value)
    if isinstance(value, float) and not math.isfinite(value):
        return "nan"
    return value


def _fmt_value(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e15 else f"{value:g}"
    return str(value)


def _num(value, spec: str) -> str:
    return "nan" if value is None or not math.isfinite(value) else format(value, spec)


def _pct(value, digits: int) -> str:
    return "nan" if value is None or not math.isfinite(value) else f"{100 * value:.{digits}f}%"


def _short(note: str, width: int = 72) -> str:
    """Notes in the terminal table are cut (the JSON and CSV keep the whole text)."""
    return note if len(note) <= width else note[: width - 3] + "..."
