"""The result of :func:`l2o_env.evaluation.evaluate`: a tidy table plus the configuration that made it.

Saved as two files with the same stem: ``NAME.json`` (format ``l2o_env.evaluation/2``: ``config``, the
column meanings, ``rows`` and the per-slot sum rates behind the CDF plot) and ``NAME.csv`` (the rows
alone, one per solver x sweep point). With several seeds the JSON also holds ``seed_rows`` (one per solver
x sweep point x seed) and the CSV a last column ``seed``: ``all`` for the rows over the seeds, then the
per-seed rows with their seed. The JSON's ``config`` holds everything needed to run the table
again (:func:`l2o_env.evaluation.rerun`): env ID and keywords, seed, slots and their split, sweep,
solver names and keywords, the reference, and the library versions. Format 1 files (before the
reference became a choice: ``ratio_to_wmmse``, ``p5_user_rate``) still load; their ratio column is read as
``ratio_to_reference`` with ``wmmse`` as the reference, and the columns they lack read NaN.
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

from l2o_env.atomic import atomic_open, atomic_write

__all__ = ["EvaluationResult", "COLUMNS", "FORMAT", "jsonable"]

FORMAT = "l2o_env.evaluation/2"
_OLD_FORMATS = ("l2o_env.evaluation/1",)

#: Columns of the tidy table, with their meaning and unit.
COLUMNS: dict[str, str] = {
    "env_id": "Gymnasium env ID",
    "sweep_knob": "the knob varied across rows ('' when nothing is swept)",
    "sweep_value": "its value at this row (speed in m/s, density factor, or number of links K)",
    "fading_correlation": "rho = J0(2 pi f_d T), slot-to-slot fading correlation at this row's speed (empty without a speed)",
    "solver": "solver label",
    "mean_wsr": "mean weighted sum rate per slot, bit/s/Hz",
    "wsr_ci95": "half-width of the 95 % confidence interval of mean_wsr (over independent units), bit/s/Hz",
    "std_wsr": "standard deviation of the weighted sum rate over slots, bit/s/Hz",
    "mean_sum_rate": "mean unweighted sum rate per slot, bit/s/Hz",
    "sum_rate_ci95": "half-width of the 95 % confidence interval of mean_sum_rate, bit/s/Hz",
    "ratio_to_reference": "mean_wsr / mean_wsr of the reference solver on the same channels (ratio of means)",
    "ratio_ci95": "half-width of the 95 % confidence interval of the ratio (paired units, delta method)",
    "served_fraction": "fraction of links whose unit-averaged rate exceeds served_rate (0.01 bit/s/Hz by default)",
    "jain_index": "Jain's fairness index of the link rates, (sum r)^2 / (K sum r^2), mean over units",
    "time_per_slot_s": "solver wall-clock seconds per slot (batched calls / slots)",
    "clipped_fraction": "fraction of slots whose action left [0, pmax] and was clipped",
    "slots": "slots evaluated (episodes x episode_length)",
    "units": "independent units behind the intervals: slots when episode_length is 1, else episodes",
    "note": "'reference' for the reference row ('(added automatically)' when it was not asked for); 'genie: ...' "
            "for the row that sees the true channel (aged or noisy CSI); env facts a solver was given ('from the "
            "env: rho=...'); checkpoint picks and 'trained on ...' for learned solvers; 'failed: ...' for a "
            "solver that raised",
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
        per_slot_sum_rate: ``{(solver label, sweep value): (slots,) array}`` of unweighted sum rates, bit/s/Hz
            (with several seeds: every seed's slots, in seed order).
        seed_rows: with several seeds (``config["seeds"] > 1``), the per-seed rows (the keys of
            :data:`COLUMNS` plus ``seed``), each what the one-seed evaluation of its seed gives; ``rows`` then
            holds their means over the seeds with Student-t 95 % intervals. Empty with one seed.
    """

    rows: list[dict]
    config: dict
    per_slot_sum_rate: dict[tuple[str, Any], np.ndarray] = dataclasses.field(default_factory=dict)
    seed_rows: list[dict] = dataclasses.field(default_factory=list)

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

    def per_seed(self, solver: str, sweep_value: Any = None) -> list[dict]:
        """The per-seed rows of ``solver`` at ``sweep_value``, in seed order (``[row(...)]`` with one seed)."""
        if not self.seed_rows:
            return [self.row(solver, sweep_value)]
        found = [r for r in self.seed_rows if r["solver"] == solver and _key(r["sweep_value"]) == _key(sweep_value)]
        if not found:
            raise KeyError(f"no row for solver={solver!r}, sweep_value={sweep_value!r}; "
                           f"solvers {self.solvers}, sweep values {self.sweep_values}")
        return found

    def column(self, name: str, solver: str) -> list:
        """``name`` of ``solver`` at every sweep point, in sweep order."""
        if name not in COLUMNS:
            raise KeyError(f"unknown column {name!r}; columns: {list(COLUMNS)}")
        return [r[name] for r in self.rows if r["solver"] == solver]

    # --- text ------------------------------------------------------------------------------------
    def table(self) -> str:
        """A fixed-width table for the terminal (the CSV has every column at full precision)."""
        cfg = self.config
        knob = cfg.get("sweep") and cfg["sweep"]["knob"]
        ref = cfg.get("reference", "wmmse")
        show_rho = any(r.get("fading_correlation") is not None for r in self.rows)
        header = (["solver"] + ([f"{knob}"] if knob else []) + (["rho"] if show_rho else [])
                  + ["WSR +/- 95%", "sum rate", f"ratio to {ref} +/- 95%", "served", "Jain", "ms/slot", "clipped",
                     "slots", "note"])
        lines = []
        for r in self.rows:
            line = [r["solver"]] + ([_fmt_value(r["sweep_value"])] if knob else []) + (
                [_num(r.get("fading_correlation"), ".2f")] if show_rho else []) + [
                _pm(r["mean_wsr"], r.get("wsr_ci95"), ".3f"), _num(r["mean_sum_rate"], ".3f"),
                _pm_pct(r["ratio_to_reference"], r.get("ratio_ci95")),
                _pct(r.get("served_fraction"), 1), _num(r.get("jain_index"), ".3f"),
                _num(1e3 * r["time_per_slot_s"], ".4f"), _pct(r["clipped_fraction"], 1), str(r["slots"]),
                _short(r["note"])]
            lines.append(line)
        widths = [max(len(h), *(len(l[i]) for l in lines)) for i, h in enumerate(header)]
        left = {0, len(header) - 1}

        def fmt(cells):
            return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

        from l2o_env.evaluation.plots import _shown_kwargs

        kw = ", ".join(f"{k}={v}" for k, v in _shown_kwargs(cfg).items())
        unit = cfg.get("unit", "slot")
        n = int(cfg.get("seeds") or 1)
        if n > 1:  # means over the seeds (see harness, "Several seeds")
            title = (f"{cfg['env_id']}({kw})  seeds={cfg['seed']}..{cfg['seed'] + n - 1}  {cfg['episodes']} episode(s) x "
                     f"{cfg['episode_length']} step(s) per point and seed; rates in bit/s/Hz; mean over the {n} seeds, "
                     f"+/- = 95% Student-t interval over the seeds (n-1 = {n - 1} degrees of freedom); slots: all seeds")
        else:
            title = (f"{cfg['env_id']}({kw})  seed={cfg['seed']}  {cfg['episodes']} episode(s) x {cfg['episode_length']} "
                     f"step(s) per point; rates in bit/s/Hz; +/- = 95% confidence interval over {unit}s")
        rule = "-" * max(len(fmt(header)), 20)
        genie = cfg.get("genie")
        if genie:
            title += (f"\ngenie row {genie['label']!r}: {genie['name']} on the true current channel (perfect CSI), an "
                      "upper bound; every other row sees the aged/noisy observation; all are scored on the true channel")
        return "\n".join([title, fmt(header), rule] + [fmt(l) for l in lines])

    def __str__(self) -> str:
        return self.table()

    # --- files -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        per_slot = [{"solver": s, "sweep_value": jsonable(v), "sum_rate": [float(f"{x:.6g}") for x in arr]}
                    for (s, v), arr in self.per_slot_sum_rate.items()]
        out = {"format": FORMAT, "config": jsonable(self.config), "columns": COLUMNS,
               "rows": jsonable(self.rows), "per_slot_sum_rate": per_slot}
        if self.seed_rows:  # several seeds: the per-seed rows behind the means
            out["seed_rows"] = jsonable(self.seed_rows)
        return out

    def to_json(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        atomic_write(path, json.dumps(self.to_dict(), indent=1, allow_nan=False) + "\n")  # never half a file
        return path

    def to_csv(self, path: str | os.PathLike) -> Path:
        path = Path(path)
        with atomic_open(path, "w", newline="") as f:  # a temporary file renamed over path when complete
            # several seeds: a last column "seed", "all" for the rows over the seeds, then the per-seed rows
            w = csv.DictWriter(f, fieldnames=list(COLUMNS) + (["seed"] if self.seed_rows else []))
            w.writeheader()
            for r in self.rows + self.seed_rows:
                cells = {k: _csv_cell(r[k]) for k in COLUMNS}
                if self.seed_rows:
                    cells["seed"] = r.get("seed", "all")
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
        if not isinstance(data, dict) or data.get("format") not in (FORMAT, *_OLD_FORMATS):
            raise ValueError(f"EvaluationResult.load: {path} is not an l2o_env evaluation result "
                             f"(format {FORMAT!r} expected, got {data.get('format') if isinstance(data, dict) else None!r})")
        try:
            raw_rows = data["rows"]
            if data["format"] in _OLD_FORMATS:
                raw_rows = [_upgrade_row(r) for r in raw_rows]
                data["config"].setdefault("reference", "wmmse")
            rows, seed_rows = ([{k: (float("nan") if v is None and k in _FLOAT_COLUMNS else v) for k, v in r.items()}
                                for r in raw] for raw in (raw_rows, data.get("seed_rows", [])))
            per_slot = {(d["solver"], _key(d["sweep_value"])): np.asarray(d["sum_rate"], dtype=np.float64)
                        for d in data.get("per_slot_sum_rate", [])}
            config = data["config"]
            if not isinstance(config, dict):
                raise TypeError(f"'config' is a {type(config).__name__}, not an object")
        except (KeyError, TypeError, AttributeError, ValueError) as exc:  # a hand-edited or damaged file
            what = f"missing key {exc}" if isinstance(exc, KeyError) else str(exc)
            raise ValueError(f"EvaluationResult.load: {path} is damaged: {what}") from None
        return cls(rows=rows, config=config, per_slot_sum_rate=per_slot, seed_rows=seed_rows)

    def plot(self, path: str | os.PathLike, metric: str | None = None) -> Path:
        """PNG of the result (see :func:`l2o_env.evaluation.plots.plot_result`).

        ``metric``: ``"ratio"`` (ratio to the reference) or ``"wsr"`` (mean weighted sum rate, bit/s/Hz),
        drawn with 95 % error bars against the swept knob (or as bars without a sweep); ``None``: the ratio
        with a sweep, the CDF of the per-slot sum rate without one (Sun et al. 2018, Fig. 7)."""
        from l2o_env.evaluation.plots import plot_result

        return plot_result(self, path, metric=metric)


_FLOAT_COLUMNS = {"mean_wsr", "wsr_ci95", "std_wsr", "mean_sum_rate", "sum_rate_ci95",
                  "ratio_to_reference", "ratio_ci95", "served_fraction", "jain_index", "time_per_slot_s",
                  "clipped_fraction"}


def _upgrade_row(row: dict) -> dict:
    """A format-1 row in format-2 columns (renamed ratio, missing columns as None -> NaN)."""
    row = dict(row)
    row["ratio_to_reference"] = row.pop("ratio_to_wmmse", None)
    row.pop("p5_user_rate", None)
    for key in COLUMNS:
        row.setdefault(key, None)
    return row


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


def _pm(value, half, spec: str) -> str:
    if value is None or not math.isfinite(value):
        return "nan"
    if half is None or not math.isfinite(half):
        return format(value, spec)
    return f"{format(value, spec)} +/- {format(half, spec)}"


def _pm_pct(value, half) -> str:
    if value is None or not math.isfinite(value):
        return "nan"
    if half is None or not math.isfinite(half):
        return f"{100 * value:.2f}%"
    return f"{100 * value:.2f}% +/- {100 * half:.2f}"


def _pct(value, digits: int) -> str:
    return "nan" if value is None or not math.isfinite(value) else f"{100 * value:.{digits}f}%"


def _short(note: str, width: int = 72) -> str:
    """Notes in the terminal table are cut (the JSON and CSV keep the whole text)."""
    return note if len(note) <= width else note[: width - 3] + "..."
