"""Env ID -> problem family, channel model, defaults, knobs, one-line description and paper citation.

This is the one table behind the env registration, ``l2o list`` and the README's scenario table, and
the only place that lists env IDs: everything that differs between scenarios (which problem family,
which channel model, which knobs apply) is a field of :class:`Scenario`, never a test on an ID
elsewhere. Adding a power-control scenario is one row here plus one channel-model file
(``l2o_env/channels/``); the registration, the env classes, the sampler and ``l2o list`` pick it up.
The channel-model classes are imported lazily (``"module:Class"``), so importing this module is cheap
and a scenario whose model file is missing fails only when it is built.

>>> from l2o_env.scenarios import ENV_IDS, build_model, env_ids
>>> ENV_IDS
['PowerControl-IC-v0', 'PowerControl-IMAC-v0', 'PowerControl-AdHoc-v0', 'PowerControl-D2D-v0', 'Beamforming-MISO-v0', 'Beamforming-IBC-v0', 'Beamforming-D2D-v0']
>>> env_ids(problem="beamforming")
['Beamforming-MISO-v0', 'Beamforming-IBC-v0', 'Beamforming-D2D-v0']
>>> build_model("PowerControl-IC-v0", num_links=20).num_links
20
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

from l2o_env.validation import choice, integer, name_unknown, real, suggest

__all__ = ["Scenario", "SCENARIOS", "ENV_IDS", "env_ids", "get_scenario", "build_model", "model_class", "model_knobs"]


@dataclass(frozen=True)
class Scenario:
    """One registered scenario (one row of the table, one Gymnasium ID).

    Attributes:
        env_id: the Gymnasium ID, e.g. ``"PowerControl-IMAC-v0"``.
        model: the channel model as ``"module:Class"`` (imported on first use).
        defaults: model keyword defaults for this ID (e.g. ``num_links``), on top of the model's own.
        description: one line for ``l2o list`` and the README table.
        citation: the paper the model follows, as plain text: authors, year, venue, arXiv id and the
            section (the full references are in the README's "References" section).
        problem: the problem family (a name of ``l2o_env.problems.PROBLEMS``): it selects the env classes
            (``l2o_env.envs.registration.ENTRY_POINTS``), the observation and action contract and the
            solvers that apply.
        snr_db_knob: whether the env accepts ``snr_db`` (``noise = pmax / 10^(snr_db/10)``): only
            meaningful for unit-mean gains, where pmax / noise is the SNR (the Gaussian IC).
        topology_knob: whether the env accepts ``topology="fixed"|"random"`` and ``layout_seed`` (ad hoc).
        default_topology: ``"fixed"`` (one layout per configuration, kept across episodes) or ``"random"``.
    """

    env_id: str
    model: str
    defaults: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    citation: str = ""
    problem: str = "power"
    snr_db_knob: bool = False
    topology_knob: bool = False
    default_topology: str = "random"

    def __post_init__(self) -> None:
        if not isinstance(self.env_id, str) or not self.env_id or ":" in self.env_id:
            raise ValueError(f"Scenario: env_id must be a non-empty string without ':', got {self.env_id!r}")
        if not isinstance(self.model, str) or self.model.count(":") != 1:
            raise ValueError(f"Scenario {self.env_id}: model must be 'module:Class', got {self.model!r}")
        choice(f"Scenario {self.env_id}", "default_topology", self.default_topology, ("fixed", "random"))
        for flag in ("snr_db_knob", "topology_knob"):
            choice(f"Scenario {self.env_id}", flag, getattr(self, flag), (True, False))
        if self.default_topology == "fixed" and not self.topology_knob:
            raise ValueError(f"Scenario {self.env_id}: default_topology='fixed' needs topology_knob=True")


_TABLE = (
    Scenario(
        env_id="PowerControl-IC-v0",
        model="l2o_env.channels.ic:GaussianIC",
        defaults={"num_links": 10},
        description="K-link Gaussian interference channel, h_ij ~ CN(0,1), pmax = noise = 1 (SNR 0 dB)",
        citation=("Sun et al. 2018, 'Learning to Optimize', IEEE TSP, arXiv:1705.09412, Sec. V-A; "
                  "Shen et al. 2021 (WCGCN), IEEE JSAC, arXiv:2007.07632, Table I"),
        snr_db_knob=True,
    ),
    Scenario(
        env_id="PowerControl-IMAC-v0",
        model="l2o_env.channels.imac:IMAC",
        defaults={"num_links": 12, "num_cells": 3},
        description="Interfering multiple-access channel: N cells, K/N users per cell, path loss (200/d)^3, 8 dB shadowing",
        citation="Sun et al. 2018, 'Learning to Optimize', IEEE TSP, arXiv:1705.09412, Sec. V-A and Table II",
    ),
    Scenario(
        env_id="PowerControl-AdHoc-v0",
        model="l2o_env.channels.adhoc:AdHoc",
        defaults={"num_links": 20},
        description="Ad hoc network: K pairs, transmitters in [-K,K]^2 m, gain 2 d^-4.4 |CN(0,1)|^2, sigma=2.6e-5, fixed topology",
        citation=("Chowdhury et al. 2021, 'Unfolding WMMSE Using Graph Neural Networks' (UWMMSE), IEEE TWC, "
                  "arXiv:2009.10812, Sec. IV"),
        topology_knob=True,
        default_topology="fixed",
    ),
    Scenario(
        env_id="PowerControl-D2D-v0",
        model="l2o_env.channels.d2d:D2D",
        defaults={"num_links": 50},
        description="D2D: K pairs in 1 km x 1 km, ITU-R P.1411 path loss, 8 dB shadowing, 40 dBm, -169 dBm/Hz",
        citation=("Shen et al. 2021 (WCGCN), IEEE JSAC, arXiv:2007.07632, Sec. V-B; channel model of "
                  "Cui, Shen & Yu 2019, IEEE JSAC, arXiv:1808.01486"),
    ),
    Scenario(
        env_id="Beamforming-MISO-v0",
        model="l2o_env.channels.miso:MISO",
        defaults={"num_users": 4, "num_antennas": 4},
        description="MISO downlink: one BS with M = 4 antennas, N = 4 single-antenna users, h ~ CN(0, I), "
                    "noise 1, P = 10^(snr_db/10), snr_db 10",
        citation=("Pellaco, Bengtsson & Jalden 2020, 'Deep unfolding of the weighted MMSE beamforming "
                  "algorithm', arXiv:2006.08448, Sec. II and V"),
        problem="beamforming",
    ),
    Scenario(
        env_id="Beamforming-IBC-v0",
        model="l2o_env.channels.ibc:IBC",
        defaults={"scale": "small"},
        description="Multi-cell MIMO downlink: 2 BSs x 4 users, Nt = 8, Nr = d = 2, 10 W per BS, "
                    "128.1 + 37.6 log10(d/km) dB, 8 dB shadowing, noise from SNR 5 dB; scale, interference",
        citation=("Song, Liu & Xu 2023, 'Learning to Optimize Non-Convex Sum-Rate Maximization Problems', "
                  "SynS & ML workshop at ICML 2023, Sec. 4; problem and WMMSE of Shi et al. 2011, IEEE TSP, "
                  "doi:10.1109/TSP.2011.2147784"),
        problem="beamforming",
    ),
    Scenario(
        env_id="Beamforming-D2D-v0",
        model="l2o_env.channels.d2d_beamforming:D2DBeamforming",
        defaults={"num_links": 50},
        description="D2D beamforming: K = 50 pairs in 1 km x 1 km, Nt = 2, single-antenna receivers, "
                    "4.4e5 / d^1.88 gain, noise 1, Pmax 1 (pathloss='itu1411': the power-control model)",
        citation="Shen et al. 2021 (WCGCN), IEEE JSAC, arXiv:2007.07632, Sec. V-C",
        problem="beamforming",
    ),
)

# the read-only view SCENARIOS and the list ENV_IDS are the public API; they are built from _TABLE only
_BY_ID: dict[str, Scenario] = {s.env_id: s for s in _TABLE}
assert len(_BY_ID) == len(_TABLE), "duplicate env ID in the scenario table"
SCENARIOS: Mapping[str, Scenario] = MappingProxyType(_BY_ID)
ENV_IDS: list[str] = [s.env_id for s in _TABLE]


def env_ids(problem: str | None = None) -> list[str]:
    """The env IDs of the table in order; with ``problem``, only that family's (``"power"``, ``"beamforming"``)."""
    return [s.env_id for s in SCENARIOS.values() if problem is None or s.problem == problem]


def _strip_namespace(env_id: str) -> str:
    # gym.make("l2o_env:PowerControl-IC-v0") carries the module prefix in the ID
    return env_id.split(":", 1)[1] if ":" in env_id else env_id


def get_scenario(env_id: str) -> Scenario:
    """The :class:`Scenario` of ``env_id``; a ValueError with a "did you mean" hint for unknown IDs."""
    if not isinstance(env_id, str):
        raise TypeError(f"env_id must be a string such as {ENV_IDS[0]!r}, got {type(env_id).__name__}")
    key = _strip_namespace(env_id)
    if key not in SCENARIOS:
        raise ValueError(f"unknown env_id {env_id!r}.{suggest(key, ENV_IDS)} Known IDs: {', '.join(ENV_IDS)}")
    return SCENARIOS[key]


def model_class(env_id: str) -> type:
    """The channel-model class of ``env_id`` (imported on first use)."""
    module, attr = get_scenario(env_id).model.split(":")
    try:
        mod = importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(f"{env_id}: its channel model {module}.{attr} cannot be imported ({exc})") from exc
    return getattr(mod, attr)


def model_knobs(env_id: str) -> tuple[str, ...]:
    """The keyword arguments the channel model of ``env_id`` accepts (its constructor's parameters)."""
    params = inspect.signature(model_class(env_id).__init__).parameters
    return tuple(
        name for name, p in params.items() if name != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    )


def build_model(env_id: str, **model_kwargs: Any):
    """Build the channel model of ``env_id`` with this ID's defaults, overridden by ``model_kwargs``.

    Raises a ValueError naming the keyword for a knob the model does not have, for ``density != 1`` on
    a model without geometry (the Gaussian IC), and for ``num_links`` not divisible by ``num_cells``.
    The model's own constructor validates the values.
    """
    scenario = get_scenario(env_id)
    cls = model_class(env_id)
    knobs = model_knobs(env_id)
    kwargs = dict(scenario.defaults)
    kwargs.update(model_kwargs)
    if "density" in kwargs and "density" not in knobs:
        density = kwargs.pop("density")
        try:
            unit = float(density) == 1.0
        except (TypeError, ValueError):
            unit = False
        if not unit:
            raise ValueError(
                f"{scenario.env_id}: density={density!r} is not supported: this channel has no geometry "
                "(density scales the area of the transmitters); only density=1 is allowed"
            )
    unknown = [k for k in kwargs if k not in knobs]
    if unknown:
        raise ValueError(
            f"{scenario.env_id}: unknown channel-model keyword(s) {name_unknown(unknown, knobs)}; {cls.__name__} "
            f"accepts {list(knobs)}"
        )
    for name in ("num_links", "num_cells"):
        if name in kwargs:
            kwargs[name] = integer(scenario.env_id, name, kwargs[name])
    for name in ("density", "carrier_frequency"):
        if name in kwargs:
            kwargs[name] = real(scenario.env_id, name, kwargs[name], above=0.0)
    if "num_cells" in kwargs and "num_links" in kwargs:
        k, n = kwargs["num_links"], kwargs["num_cells"]
        if k % n != 0:
            raise ValueError(
                f"{scenario.env_id}: num_cells={n} must divide num_links={k} (K/N users per cell); "
                f"e.g. num_links={n * max(1, round(k / n))}"
            )
    return cls(**kwargs)
