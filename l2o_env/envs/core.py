"""Batched slot dynamics of every problem family: one home for the Envs, the VectorEnvs and the
ObservationSampler.

Nothing here knows Gymnasium. :func:`parse_config` turns the keyword arguments of ``gym.make`` into a
validated :class:`EnvConfig` (per-scenario behaviour comes from the row of ``l2o_env.scenarios``, never
from the env ID itself); :class:`BatchSim` holds the state of ``B`` networks (the batch axis of the
channel model is the env axis of the vector env; the single env is ``B = 1``; a sampler batch is ``B``
fresh networks), advances it one slot and assembles the observation (:meth:`BatchSim.observation`).
Everything family-specific is small and sits in :data:`FAMILIES` (one :class:`SlotFamily` per problem
family: what a slot observes, how an action is made feasible); the contracts themselves (spaces, action
checks, rates) live in :mod:`l2o_env.problems`. ``check_action``, ``clip_power`` and ``PF_MIN_RATE`` of
the power family are re-exported here.

Slot dynamics (per network, all networks in one numpy call):

- ``speed=None``: every slot an independent draw (new layout, new fading), except a fixed topology
  (ad hoc default) whose layout is kept and only the fading is redrawn.
- Fixed topology (``topology="fixed"``, ad hoc only): the layout is a property of the configuration,
  not of a reset. :func:`parse_config` draws it once as ``model.sample_layout(default_rng(layout_seed),
  1)`` (:attr:`EnvConfig.fixed_layout`, read-only); every network of a :class:`BatchSim` (every sub-env
  of the vector env), every reset whatever its seed, and the ``ObservationSampler`` share it. The seed of
  ``reset`` drives the fading and the weights only. ``layout_seed=0`` is ``default_rng(0)``'s first draw,
  the layout a single env drew at ``reset(seed=0)`` before ``layout_seed`` existed.
- ``speed >= 0`` m/s: positions persist within an episode and move ``speed * slot_duration`` metres per
  slot (``model.move``); the path loss is recomputed every slot; shadowing is drawn once per episode and
  kept; the fading follows the Jakes/Gauss-Markov recursion ``h_t = rho h_(t-1) + sqrt(1-rho^2) e_t``
  with ``rho = J0(2 pi f_d T)``, ``f_d = speed * carrier_frequency / c`` (``channels.base``).

Channel-state information (``csi_delay`` d, ``csi_error`` e, ``csi_history`` n; defaults 0, 0, 1 change
nothing, not even the random stream): the observation at step t holds the estimate of slot t - d, the
reward is paid on the true slot t. A slot's estimate is drawn once, when the slot is simulated: the
family's observation of the fading ``sqrt(1 - e^2) f + e z``, ``z ~ CN(0, 1)``; every fading entry is
CN(0, 1) and the large scale multiplies it, so the estimated channel is ``sqrt(1 - e^2) h + e n`` with
``n`` of each entry's large-scale power (the MMSE-estimation model; power control observes
``|h_hat|^2``). Every per-slot key of the observation (gain or channel, ``bs_gain``, positions, the
IBC's channel-derived noise) is the observed slot's; positions are exact. ``n > 1`` adds the problem's
``history_key`` (``gain_history (n, K, K)``, ``channel_history (n, K, T, Nr, Nt, 2)``): the channels of
slots t-d-n+1 .. t-d, oldest first, the last one the observed channel. A reset simulates the d + n - 1
slots before the first observation with the same dynamics, so the first slot of an episode is like any
other; with ``speed=None`` those slots are independent draws (a fixed topology: the same layout, new
fading), so a delayed observation is independent of the channel it is scored on. The true current slot
is in every ``info`` as ``true_<key>`` (:meth:`BatchSim.truth`); :func:`true_observation` merges it into
an observation (the genie's input).

Proportional-fair weights: ``w_i = 1 / max(R_i, PF_MIN_RATE)`` with the exponentially averaged rate
``R_i <- (1 - beta) R_i + beta r_i`` (``beta = pf_smoothing``, default 0.1: a time constant of about 10
slots), updated after every step with the rates the action achieved; ``R_i = PF_INIT_RATE = 1`` bit/s/Hz
at every reset, so the first slot of an episode has all weights 1.

Observed values are float32; the reward is computed from exactly the float32 values the agent saw
(noise, pmax and weights are rounded to float32 once), so ``reward == rates.weighted_sum_rate(obs...)``
with perfect CSI (and ``rates.weighted_sum_rate(true_observation(obs, info)...)`` always).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Mapping

import numpy as np

from l2o_env.channels.base import ChannelModel, Layout, complex_normal, evolve_fading, jakes_correlation
from l2o_env.problems import Problem, get_problem
from l2o_env.problems.beamforming import project_precoders
from l2o_env.problems.power import PF_MIN_RATE, check_action, clip_power
from l2o_env.rates import link_rates
from l2o_env.scenarios import SCENARIOS, Scenario, build_model, get_scenario, model_class, model_knobs
from l2o_env.validation import choice, integer, name_unknown, real

__all__ = [
    "EnvConfig",
    "BatchSim",
    "parse_config",
    "check_action",
    "clip_power",
    "F32_MAX",
    "PF_MIN_RATE",
    "PF_INIT_RATE",
    "WEIGHT_MODES",
    "ENV_KNOBS",
    "ENV_DEFAULTS",
    "SimHolder",
    "SlotFamily",
    "FAMILIES",
    "TRUTH_PREFIX",
    "true_observation",
]

F32_MAX = float(np.finfo(np.float32).max)
# PF_MIN_RATE (bit/s/Hz, from l2o_env.problems.power): caps proportional-fair weights at 100 for a starved link
PF_INIT_RATE = 1.0  # bit/s/Hz: the averaged rate at reset, so the first slot has weights 1
WEIGHT_MODES = ("uniform", "random", "proportional_fair")
TOPOLOGIES = ("fixed", "random")
# knobs the env handles itself; every other keyword goes to the channel model
# model knobs that only set the default noise / pmax, so they clash with an explicit noise= / pmax=
_NOISE_KNOBS = ("noise_std", "noise_dbm_per_hz", "bandwidth")
_PMAX_KNOBS = ("tx_power_dbm",)
ENV_KNOBS = (
    "noise", "pmax", "snr_db", "speed", "slot_duration", "weights", "topology", "pf_smoothing", "layout_seed",
    "csi_delay", "csi_error", "csi_history",
)
# the default of every env knob (None for noise / pmax / snr_db: the model's; for topology: the scenario's
# default_topology); what a keyword equal to its default changes: nothing
ENV_DEFAULTS = {
    "noise": None,
    "pmax": None,
    "snr_db": None,
    "speed": None,
    "slot_duration": 0.02,
    "weights": "uniform",
    "topology": None,
    "pf_smoothing": 0.1,
    "layout_seed": 0,
    "csi_delay": 0,
    "csi_error": 0.0,
    "csi_history": 1,
}


@dataclass(frozen=True, eq=False)
class EnvConfig:
    """Validated configuration of an env (what ``gym.make`` keywords resolve to), of any problem family.

    Attributes:
        env_id: the registered ID.
        scenario: its :class:`~l2o_env.scenarios.Scenario`.
        model: the channel model instance.
        num_links: K.
        noise: ``(K,)`` float64 noise powers sigma^2 (W), float32-representable; None when the model
            derives the noise from every slot's channel (``model.noise_from_channel``, the IBC's SNR rule).
        pmax: ``(T,)`` float64 budgets (W) of the T transmitters, float32-representable (power control:
            T = K, one per link).
        speed: m/s, or None for independent slots.
        slot_duration: s.
        fading_correlation: rho of the Jakes model, None when ``speed`` is None.
        weights: one of :data:`WEIGHT_MODES`.
        topology: ``"fixed"`` (layout kept across episodes) or ``"random"``.
        pf_smoothing: beta of the proportional-fair average.
        extra_shapes: shapes of the model's extra observation keys for one network (e.g. ``bs_gain``).
        layout_seed: seed of the fixed layout; None unless ``topology="fixed"``.
        fixed_layout: the one layout of a fixed topology (batch 1, arrays read-only):
            ``model.sample_layout(np.random.default_rng(layout_seed), 1)``; None for a random topology.
        num_tx: T, the transmitters (``model.num_tx``; K for power control).
        tx_of_link: ``(K,)`` intp, the transmitter of every link (``model.tx_of_link``; ``arange(K)``
            for power control).
        csi_delay: d, slots between the channel that is observed and the one the action is scored on.
        csi_error: e in [0, 1], the estimation error: the observed fading is
            ``sqrt(1 - e^2) f + e n``, ``n ~ CN(0, 1)`` (so the observed channel is ``sqrt(1 - e^2) h + e n'``
            with ``n'`` of each entry's large-scale power).
        csi_history: n >= 1, the observed channels the observation carries (``n > 1`` adds the
            problem's ``history_key``).
    """

    env_id: str
    scenario: Scenario
    model: ChannelModel
    num_links: int
    noise: np.ndarray
    pmax: np.ndarray
    speed: float | None
    slot_duration: float
    fading_correlation: float | None
    weights: str
    topology: str
    pf_smoothing: float
    extra_shapes: dict
    layout_seed: int | None = None
    fixed_layout: Layout | None = None
    num_tx: int = 0
    tx_of_link: np.ndarray | None = None
    csi_delay: int = 0
    csi_error: float = 0.0
    csi_history: int = 1

    @property
    def problem(self) -> str:
        """The problem family of the scenario (``"power"``, ``"beamforming"``)."""
        return self.scenario.problem

    @property
    def fixed_topology(self) -> bool:
        return self.topology == "fixed"

    @property
    def has_geometry(self) -> bool:
        return bool(self.model.has_geometry)

    @property
    def perfect_csi(self) -> bool:
        """Whether the observation holds the exact channel the action is scored on (``csi_delay = 0``,
        ``csi_error = 0``; a history does not change that)."""
        return self.csi_delay == 0 and self.csi_error == 0.0

    @property
    def observation_keys(self) -> tuple[str, ...]:
        """The problem's keys (``Problem.obs_keys``), then positions (geometric models), then model extras,
        then, with ``csi_history > 1``, the problem's ``history_key`` (``gain_history``, ``channel_history``)."""
        problem = get_problem(self.problem)
        keys = tuple(problem.obs_keys)
        if self.has_geometry:
            keys += ("tx_pos", "rx_pos")
        keys += tuple(self.extra_shapes)
        if self.csi_history > 1:
            keys += (problem.history_key,)
        return keys


def _per_link(env_id: str, name: str, value: Any, k: int, unit: str, per: str = "link") -> np.ndarray:
    """A positive scalar or ``(K,)`` array as float64 ``(K,)`` rounded to float32 (what the agent sees);
    ``per="transmitter"`` for the budgets of a family whose transmitters serve several links."""
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError):
        raw = np.asarray(None)
    if raw.dtype.kind not in "fiu":  # strings, bools, None, ragged lists: not a number (validation.real's rule)
        raise ValueError(f"{env_id}: {name} must be a positive number or a ({k},) array in {unit}, got {value!r}")
    arr = raw.astype(np.float64)
    if arr.ndim == 0:
        arr = np.full(k, float(arr))
    if arr.shape != (k,):
        raise ValueError(f"{env_id}: {name} must be a scalar or have shape ({k},) (one per {per}), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(f"{env_id}: {name} must be finite and > 0 ({unit}), got {value!r}")
    with np.errstate(over="ignore"):  # (beyond float32: inf, refused below)
        arr32 = arr.astype(np.float32)
    if np.any(arr32 <= 0) or not np.all(np.isfinite(arr32)):
        raise ValueError(f"{env_id}: {name}={value!r} is outside the float32 range of the observation")
    return arr32.astype(np.float64)


def parse_config(env_id: str, **kwargs: Any) -> EnvConfig:
    """Validate the keywords of ``gym.make(env_id, **kwargs)`` and build the channel model.

    Env knobs (:data:`ENV_KNOBS`): ``noise`` (W, scalar or per link), ``pmax`` (W, scalar or per
    transmitter: per link for power control), ``snr_db`` (scenarios with ``Scenario.snr_db_knob``, the
    IC: ``noise = pmax / 10^(snr_db/10)``; a channel model whose constructor takes ``snr_db`` itself, the
    MISO and IBC beamforming models, gets it as a model knob instead), ``speed`` (m/s or None),
    ``slot_duration`` (s, default 0.02), ``weights``, ``topology`` (scenarios with
    ``Scenario.topology_knob``, the ad hoc env), ``pf_smoothing``, ``layout_seed`` (those scenarios with
    ``topology="fixed"`` only: integer >= 0, default 0), ``csi_delay`` (integer >= 0 slots),
    ``csi_error`` (in [0, 1]), ``csi_history`` (integer >= 1); defaults in :data:`ENV_DEFAULTS`. Every other
    keyword goes to the channel model (``num_links``, ``num_cells``, ``density``, ``carrier_frequency``,
    ...). Anything invalid raises a ValueError that names the keyword, the value and what is allowed.

    A fixed topology's one layout is drawn here, once, as ``model.sample_layout(
    np.random.default_rng(layout_seed), 1)`` (:attr:`EnvConfig.fixed_layout`): the same configuration
    gives the same layout in the single env, every sub-env of the vector env and the sampler.
    """
    scenario = get_scenario(env_id)
    env_id = scenario.env_id
    knobs = model_knobs(env_id)
    allowed = set(knobs) | set(ENV_KNOBS) | {"density"}
    unknown = [k for k in kwargs if k not in allowed]
    if unknown:
        raise ValueError(f"{env_id}: unknown keyword(s) {name_unknown(unknown, allowed)}; allowed: {sorted(allowed)}")

    # a knob given as its default None (noise, pmax, snr_db, speed, topology) is that default: it changes nothing
    kwargs = {k: v for k, v in kwargs.items() if not (v is None and k in ENV_DEFAULTS and ENV_DEFAULTS[k] is None)}
    # a knob of the channel model's own constructor (the beamforming models' snr_db) goes to the model
    env_kw = {k: kwargs[k] for k in ENV_KNOBS if k in kwargs and k not in knobs}
    model_kw = {k: v for k, v in kwargs.items() if k not in env_kw}

    speed = env_kw.get("speed")
    if speed is not None:
        speed = real(env_id, "speed", speed)
        if speed < 0:
            raise ValueError(f"{env_id}: speed must be None (independent slots) or >= 0 m/s, got {speed!r}")
    slot_duration = real(env_id, "slot_duration", env_kw.get("slot_duration", ENV_DEFAULTS["slot_duration"]))
    if slot_duration <= 0:
        raise ValueError(f"{env_id}: slot_duration must be > 0 seconds, got {slot_duration!r}")

    weights = choice(env_id, "weights", env_kw.get("weights", ENV_DEFAULTS["weights"]), WEIGHT_MODES)

    if scenario.topology_knob:
        topology = choice(env_id, "topology", env_kw.get("topology", scenario.default_topology), TOPOLOGIES)
    else:
        if "topology" in env_kw:
            raise ValueError(
                f"{env_id}: topology={env_kw['topology']!r} is not a knob of this env (only {_with('topology_knob')} "
                "keep a fixed topology); its layout is redrawn every episode (every slot with speed=None)"
            )
        topology = scenario.default_topology
    if "layout_seed" in env_kw:
        if not scenario.topology_knob:
            raise ValueError(
                f"{env_id}: layout_seed={env_kw['layout_seed']!r} is not a knob of this env (only "
                f"{_with('topology_knob')} keep a fixed topology); its layout is redrawn every episode (every slot "
                "with speed=None)"
            )
        if topology != "fixed":
            raise ValueError(
                f"{env_id}: layout_seed={env_kw['layout_seed']!r} only applies to topology='fixed' (it seeds the "
                f"one fixed layout); topology={topology!r} draws a new layout every episode"
            )
    layout_seed = None
    if topology == "fixed":
        layout_seed = integer(env_id, "layout_seed", env_kw.get("layout_seed", ENV_DEFAULTS["layout_seed"]), minimum=0)

    pf_smoothing = real(env_id, "pf_smoothing", env_kw.get("pf_smoothing", ENV_DEFAULTS["pf_smoothing"]))
    if not 0.0 < pf_smoothing <= 1.0:
        raise ValueError(f"{env_id}: pf_smoothing (beta of the averaged rate) must be in (0, 1], got {pf_smoothing!r}")

    csi_delay = integer(env_id, "csi_delay", env_kw.get("csi_delay", ENV_DEFAULTS["csi_delay"]), minimum=0)
    csi_error = real(env_id, "csi_error", env_kw.get("csi_error", ENV_DEFAULTS["csi_error"]))
    if not 0.0 <= csi_error <= 1.0:
        raise ValueError(
            f"{env_id}: csi_error must be in [0, 1] (0: exact estimate, 1: the estimate is pure noise of the "
            f"channel's large-scale power), got {env_kw['csi_error']!r}"
        )
    csi_history = integer(env_id, "csi_history", env_kw.get("csi_history", ENV_DEFAULTS["csi_history"]), minimum=1)

    cls = model_class(env_id)
    for env_knob, model_side in (("noise", _NOISE_KNOBS + tuple(getattr(cls, "noise_knobs", ()))),
                                 ("pmax", _PMAX_KNOBS + tuple(getattr(cls, "pmax_knobs", ())))):
        clash = [k for k in model_side if k in model_kw]
        if env_knob in env_kw and clash:
            raise ValueError(
                f"{env_id}: give either {env_knob}= (W) or the channel model's {clash[0]}= (which sets the "
                f"default {env_knob}), not both"
            )
    if "snr_db" in env_kw:
        if not scenario.snr_db_knob:
            raise ValueError(
                f"{env_id}: snr_db is only defined for {_with('snr_db_knob')} (unit-mean gains, SNR = pmax/noise); "
                "set noise= (W) instead"
            )
        if "noise" in env_kw:
            raise ValueError(f"{env_id}: give either snr_db or noise, not both (snr_db sets noise = pmax / 10^(snr_db/10))")

    model = build_model(env_id, **model_kw)
    k = int(model.num_links)
    # transmitters: one per link in power control; the beamforming models say which serves which link
    num_tx = int(getattr(model, "num_tx", k))
    tx_of_link = np.asarray(getattr(model, "tx_of_link", np.arange(k)), dtype=np.intp)
    per = "link" if num_tx == k and np.array_equal(tx_of_link, np.arange(k)) else "transmitter"
    pmax = _per_link(env_id, "pmax", env_kw.get("pmax", model.default_pmax), num_tx, "W", per=per)
    if "snr_db" in env_kw:
        snr_db = real(env_id, "snr_db", env_kw["snr_db"])
        with np.errstate(over="ignore", under="ignore"):  # (an SNR whose noise is 0 or inf: refused by _per_link)
            from_snr = pmax[tx_of_link] * np.power(10.0, -snr_db / 10.0)
        noise = _per_link(env_id, f"noise (from snr_db={snr_db:g})", from_snr, k, "W")
    elif "noise" not in env_kw and getattr(model, "noise_from_channel", False):
        noise = None  # every slot's noise follows its channel (model.channel_noise)
    else:
        noise = _per_link(env_id, "noise", env_kw.get("noise", model.default_noise), k, "W")

    rho = None
    if speed is not None:
        rho = jakes_correlation(speed, float(model.carrier_frequency), slot_duration)

    # the model's extra observation keys (e.g. IMAC bs_gain): shapes from a one-network probe
    probe_rng = np.random.default_rng(0)
    layout = model.sample_layout(probe_rng, 1)
    extras = model.observation_extras(layout, model.sample_fading(probe_rng, 1))
    extra_shapes = {key: tuple(np.shape(v)[1:]) for key, v in extras.items()}

    fixed_layout = None
    if layout_seed is not None:
        # the one layout of the configuration (exactly this call: layout_seed=0 is the layout a seed-0
        # reset drew before the knob existed); read-only, since every network and reset shares it
        fixed_layout = _read_only(model.sample_layout(np.random.default_rng(layout_seed), 1))

    return EnvConfig(
        env_id=env_id,
        scenario=scenario,
        model=model,
        num_links=k,
        noise=noise,
        pmax=pmax,
        speed=speed,
        slot_duration=slot_duration,
        fading_correlation=rho,
        weights=weights,
        topology=topology,
        pf_smoothing=pf_smoothing,
        extra_shapes=extra_shapes,
        layout_seed=layout_seed,
        fixed_layout=fixed_layout,
        num_tx=num_tx,
        tx_of_link=tx_of_link,
        csi_delay=csi_delay,
        csi_error=csi_error,
        csi_history=csi_history,
    )


def _with(flag: str) -> str:
    """The env IDs whose scenario sets ``flag`` (e.g. ``"snr_db_knob"``), for error messages."""
    ids = [sid for sid, sc in SCENARIOS.items() if getattr(sc, flag)]
    return ", ".join(ids) if ids else "no registered env"


class SlotFamily:
    """What the batched dynamics need of one problem family (one instance per family in :data:`FAMILIES`).

    Attributes:
        count_key: the ``info`` key counting what the feasibility step changed (``"clipped"`` power
            entries, ``"projected"`` transmitters).
        gain_only: whether a model without a layout can be drawn in one call (``model.sample``, the
            Gaussian IC's fast path).
    """

    count_key = "changed"
    gain_only = False

    def constants(self, config: EnvConfig) -> dict[str, np.ndarray]:
        """Observation keys that never change for a configuration, float32 of one network."""
        raise NotImplementedError

    def rate_inputs(self, config: EnvConfig) -> dict[str, np.ndarray]:
        """The constant inputs of ``Problem.rates`` (float64, the float32 values the agent sees)."""
        raise NotImplementedError

    def observe(self, sim: "BatchSim", layout: Layout, fading: np.ndarray) -> dict[str, np.ndarray]:
        """The per-slot observation keys of ``B`` networks, float32 with the batch axis first."""
        raise NotImplementedError

    def project(self, sim: "BatchSim", action: np.ndarray) -> tuple[np.ndarray, Any]:
        """A validated float64 action ``(B, ...)`` (or one network's, without the batch axis) made
        feasible, and the counts of the changes (``(B,)``, or a scalar for one network)."""
        raise NotImplementedError

    def rates(self, sim: "BatchSim", action: np.ndarray) -> np.ndarray:
        """Per-link rates ``(B, K)`` of a feasible action ``(B, ...)`` on the true current slot
        (``sim.true_slot``): ``Problem.rates`` on float32 values, those the agent saw when the CSI is perfect
        (a family may call its ``l2o_env.rates`` function directly)."""
        return sim.problem.rates({**self.rate_inputs(sim.config), **sim.true_slot}, action)


class _PowerSlots(SlotFamily):
    """Power control: the gain matrix (plus positions and the model's extras); powers clipped to [0, pmax]."""

    count_key = "clipped"
    gain_only = True

    def constants(self, config):
        return {"noise": config.noise.astype(np.float32), "pmax": config.pmax.astype(np.float32)}

    def observe(self, sim, layout, fading):
        model = sim.model
        slot = {"gain": sim._f32(model.gain(layout, fading))}
        if sim.config.has_geometry:
            slot["tx_pos"] = layout.tx_pos.astype(np.float32)
            slot["rx_pos"] = layout.rx_pos.astype(np.float32)
        for key, val in model.observation_extras(layout, fading).items():
            slot[key] = np.minimum(val, F32_MAX).astype(np.float32)
        return slot

    def project(self, sim, action):
        return clip_power(action, sim.config.pmax, sim._pmax_low)

    def rates(self, sim, action):
        # POWER.rates without the dict: this runs every step of every power env
        return link_rates(sim.true_slot["gain"], action, sim.config.noise)


class _BeamformingSlots(SlotFamily):
    """Beamforming: the complex channel as float32 pairs, positions, the noise where it follows the
    channel; precoders scaled onto each transmitter's budget (``problems.beamforming.project_precoders``)."""

    count_key = "projected"

    def constants(self, config):
        const = {"tx_of_link": config.tx_of_link.astype(np.float32), "pmax": config.pmax.astype(np.float32)}
        if config.noise is not None:
            const["noise"] = config.noise.astype(np.float32)
        return const

    def rate_inputs(self, config):
        rate = {"tx_of_link": config.tx_of_link}
        if config.noise is not None:
            rate["noise"] = config.noise
        return rate

    def observe(self, sim, layout, fading):
        model, config = sim.model, sim.config
        h = model.channel(layout, fading)
        pairs = np.stack((h.real, h.imag), axis=-1)
        if config.has_geometry:  # (a receiver on top of a transmitter at extreme densities)
            np.clip(pairs, -F32_MAX, F32_MAX, out=pairs)
        slot = {"channel": pairs.astype(np.float32)}
        if config.noise is None:
            slot["noise"] = np.clip(model.channel_noise(h), _F32_TINY, F32_MAX).astype(np.float32)
        if config.has_geometry:
            tx, rx = model.positions(layout)
            slot["tx_pos"] = tx.astype(np.float32)
            slot["rx_pos"] = rx.astype(np.float32)
        return slot

    def project(self, sim, action):
        return project_precoders(action, sim.config.pmax, sim.config.tx_of_link)


#: problem family -> its :class:`SlotFamily` (a new family adds one entry)
FAMILIES: Mapping[str, SlotFamily] = MappingProxyType({"power": _PowerSlots(), "beamforming": _BeamformingSlots()})
_F32_TINY = float(np.finfo(np.float32).tiny)


class BatchSim:
    """The state of ``batch`` networks of one :class:`EnvConfig`, advanced one slot at a time.

    The single env is a ``BatchSim`` of one network, the native vector env one of ``num_envs`` networks,
    and an ``ObservationSampler`` batch is :meth:`observation` right after :meth:`reset` of ``batch``
    networks (with ``speed=None``: an independent draw; a fixed topology: its layout, fresh fading).
    The problem family's part (what a slot observes, feasibility) is its :class:`SlotFamily`; rates come
    from its :class:`~l2o_env.problems.Problem`.

    Channel-state information (the config's ``csi_delay`` d, ``csi_error`` e and ``csi_history`` n): the
    sim holds the true state of the current slot t (:attr:`layout`, :attr:`fading` and their
    observation keys :attr:`true_slot`, on which :meth:`rates` scores an action) and the *estimates* of
    the slots t-d-n+1 .. t. A slot's estimate is drawn once, when the slot is simulated: the family's
    ``observe`` on the fading ``sqrt(1 - e^2) f + e z``, ``z ~ CN(0, 1)`` (every fading entry is CN(0, 1)
    and the large scale multiplies it, so the estimation noise of each channel entry has that entry's
    large-scale power: the MMSE-estimation model); positions are exact and every per-slot key (gain,
    ``bs_gain``, positions, the IBC's channel-derived noise) is that slot's, computed from the estimate.
    The observation shows the estimate of slot t-d (:attr:`slot`) and, with n > 1, the last n estimates
    (slots t-d-n+1 .. t-d, oldest first) under the problem's ``history_key``. A reset (of every network
    or of some) simulates the d + n - 1 slots before the first observation with the dynamics of a step, so
    the first slot of an episode is like any other; with ``speed=None`` those slots are independent
    draws, so a delayed observation is independent of the channel it is scored on. With perfect CSI
    (d = 0, e = 0) :attr:`slot` *is* :attr:`true_slot`, and with n = 1 the code path and the random
    stream are the ones of an env without these knobs.

    Attributes (all with the batch axis first):
        slot: the float32 observation keys of the observed slot (power: ``gain (B, K, K)``, positions,
            ``bs_gain``; beamforming: ``channel (B, K, T, Nr, Nt, 2)``, positions, a per-slot ``noise``):
            the estimate of slot t - d.
        true_slot: the same keys for the true current slot t (what the next action is scored on).
        gain: ``slot["gain"]`` (power control), the observed gains the next action answers.
        weight: ``(B, K)`` float64 (float32-representable) weights of the current slot.
        avg_rate: ``(B, K)`` proportional-fair averaged rates (bit/s/Hz), or None.
        steps: ``(B,)`` slots since each network's last reset.
    """

    def __init__(self, config: EnvConfig, batch: int, count_steps: bool = True):
        self.config = config
        self._count_steps = count_steps  # the single env leaves episode length to TimeLimit
        self.batch = int(batch)
        self.model = config.model
        self.problem: Problem = get_problem(config.problem)
        self.family: SlotFamily = FAMILIES[config.problem]
        self._k = config.num_links
        self._pf = config.weights == "proportional_fair"
        self._distance = None if config.speed is None else config.speed * config.slot_duration
        self.layout: Layout | None = None
        self.fading: np.ndarray | None = None
        # a fixed topology: the configuration's one layout, repeated for the B networks (read-only; a
        # moving network works on a copy, see `reset`)
        self.fixed_layout: Layout | None = None
        if config.fixed_layout is not None:
            self.fixed_layout = _read_only(config.fixed_layout.take(np.zeros(self.batch, dtype=np.intp)))
        self.slot: dict[str, np.ndarray] = {}
        self.true_slot: dict[str, np.ndarray] = {}
        self.weight = np.ones((self.batch, self._k))
        self.avg_rate = None
        self.steps = np.zeros(self.batch, dtype=np.int64)
        # channel-state information: delay d, error e, history n; the estimates of slots t-d-n+1 .. t
        # (oldest first) are kept when d + n > 1
        self._delay = config.csi_delay
        self._error = config.csi_error
        self._history = config.csi_history
        self._warm = self._delay + self._history - 1  # slots simulated before the first observation
        self._ring = self._delay + self._history
        self._past: list[dict[str, np.ndarray]] = []
        self._history_key = self.problem.history_key if self._history > 1 else None
        self._channel_key = self.problem.channel_key
        probe = self.model.sample_layout(np.random.default_rng(0), 1)
        # a model whose layout carries nothing (the Gaussian IC) needs no layout redraw per slot, and
        # without a speed or extra keys only its gains matter: `model.sample` draws them directly
        # (not with an estimation error, which needs the complex fading)
        self._empty_layout = probe.batch_size is None and not probe.extra
        self._gain_only = (
            self.family.gain_only and self._empty_layout and config.speed is None and not config.has_geometry
            and not config.extra_shapes and self._error == 0.0
        )
        self._clamp = config.has_geometry
        self._uniform = config.weights == "uniform"
        self._keys = config.observation_keys
        self._const = self.family.constants(config)
        # the keys that change every slot (what CSI delay and error act on, and what `truth` returns)
        self._slot_keys = tuple(
            key for key in self._keys if key != "weight" and key not in self._const and key != self._history_key
        )
        self._pmax_low = float(config.pmax.min())

    @property
    def gain(self) -> np.ndarray | None:
        """The observed gain matrices ``(B, K, K)`` float32 (power control; None before a reset)."""
        return self.slot.get("gain")

    @property
    def slot_keys(self) -> tuple[str, ...]:
        """The observation keys that change every slot (power: ``gain``, positions, ``bs_gain``;
        beamforming: ``channel``, positions, a channel-derived ``noise``): the keys of :meth:`truth`."""
        return self._slot_keys

    # --- weights ----------------------------------------------------------------------------
    def _draw_weights(self, rng: np.random.Generator, n: int) -> np.ndarray:
        if self.config.weights == "random":
            return rng.random((n, self._k)).astype(np.float32).astype(np.float64)
        return np.ones((n, self._k))

    def _pf_weights(self) -> np.ndarray:
        w = 1.0 / np.maximum(self.avg_rate, PF_MIN_RATE)
        return w.astype(np.float32).astype(np.float64)

    # --- state ------------------------------------------------------------------------------
    def reset(self, rng: np.random.Generator, index: np.ndarray | None = None) -> None:
        """Start new episodes: all networks (``index=None``) or those in the int array ``index``.

        A fixed topology starts every episode from :attr:`EnvConfig.fixed_layout`, whatever ``rng``;
        ``rng`` draws the fading and the weights (and a random topology's layouts). With ``csi_delay`` d
        and ``csi_history`` n, the d + n - 1 slots before the first observation are simulated too (for
        the networks in ``index`` only; with ``speed=None`` every slot is already an independent draw, so
        a partial reset redraws nothing).
        """
        cfg, model = self.config, self.model
        if self._gain_only:
            warm = 0
            if index is None:
                self.layout = model.sample_layout(rng, self.batch)
                self._past = []
                self._push_gain(model.sample(rng, self.batch))
                self.steps[:] = 0
                index = np.arange(self.batch)
                warm = self._warm
            else:
                index = np.asarray(index, dtype=np.intp)
                self.steps[index] = 0
            self.weight[index] = self._draw_weights(rng, index.size)
            if self._pf:
                if self.avg_rate is None:
                    self.avg_rate = np.full((self.batch, self._k), PF_INIT_RATE)
                self.avg_rate[index] = PF_INIT_RATE
            for _ in range(warm):
                self._push_gain(model.sample(rng, self.batch))
            return
        if index is None:
            if cfg.fixed_topology:
                # a moving network starts each episode from a copy of the fixed drop (a partial reset
                # writes into it with `Layout.put`); without a speed the read-only drop itself is used
                layout = self.fixed_layout if self._distance is None else self.fixed_layout.take(np.arange(self.batch))
            else:
                layout = model.sample_layout(rng, self.batch)
            self.layout = layout
            self.fading = model.sample_fading(rng, self.batch)
            self.weight = self._draw_weights(rng, self.batch)
            if self._pf:
                self.avg_rate = np.full((self.batch, self._k), PF_INIT_RATE)
            self.steps[:] = 0
            self._past = []
            self._observe(rng)
            for _ in range(self._warm):
                self._advance_channel(rng)
            return
        index = np.asarray(index, dtype=np.intp)
        n = index.size
        if n == 0:
            return
        self.weight[index] = self._draw_weights(rng, n)
        if self._pf:
            self.avg_rate[index] = PF_INIT_RATE
        self.steps[index] = 0
        if self._distance is None:
            # the current slot of every network is already an independent draw (fixed topology: the
            # fixed layout with fresh fading), and so are the earlier slots it observes: nothing to redraw
            return
        if cfg.fixed_topology:
            fresh = self.fixed_layout.take(index)
        else:
            fresh = model.sample_layout(rng, n)
        if self.layout.batch_size is not None:
            self.layout.put(index, fresh)
        self.fading[index] = model.sample_fading(rng, n)
        if self._ring == 1 and self._error == 0.0:
            self._observe(rng)  # every row recomputed from its state: the other networks' values stay
            return
        self._restart_rows(rng, index)

    def project(self, action: np.ndarray) -> tuple[np.ndarray, Any]:
        """A validated float64 action ``(B, ...)`` made feasible (the family's rule: powers clipped,
        precoders scaled onto the budgets) and ``(B,)`` counts of what changed; one network's action
        (no batch axis) gives a scalar count."""
        return self.family.project(self, action)

    def rates(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per-link rates ``(B, K)`` and weighted sum rates ``(B,)`` of a feasible action ``(B, ...)`` on
        the true channel of the current slot (``Problem.rates`` on the float32 values of
        :attr:`true_slot`, which are the ones the agent saw when the CSI is perfect: ``l2o_env.rates``,
        the one rate formula)."""
        r = self.family.rates(self, action)
        if self._uniform:
            return r, r.sum(axis=-1)
        return r, (r * self.weight).sum(axis=-1)

    def advance(self, rng: np.random.Generator, rates: np.ndarray | None) -> None:
        """Move to the next slot: update proportional-fair weights from ``rates``, then the channel."""
        if self._pf and rates is not None:
            beta = self.config.pf_smoothing
            self.avg_rate = (1.0 - beta) * self.avg_rate + beta * rates
            self.weight = self._pf_weights()
        if self._count_steps:
            self.steps += 1
        self._advance_channel(rng)

    def _advance_channel(self, rng: np.random.Generator) -> None:
        """The channel of every network one slot on (and its estimate into the past)."""
        model = self.model
        if self._gain_only:
            self._push_gain(model.sample(rng, self.batch))
            return
        if self._distance is None:
            if not (self.config.fixed_topology or self._empty_layout):
                self.layout = model.sample_layout(rng, self.batch)
            self.fading = model.sample_fading(rng, self.batch)
        else:
            self.layout = model.move(self.layout, rng, self._distance)
            self.fading = evolve_fading(self.fading, rng, self.config.fading_correlation)
        self._observe(rng)

    def observation(self, row: int | None = None) -> dict[str, np.ndarray]:
        """The current observation as new float32 arrays (never views of the state).

        ``row=None``: all ``B`` networks, batch axis first, in the order of
        :attr:`EnvConfig.observation_keys` (power: ``gain (B, K, K)``, ``weight``, ``noise``, ``pmax``
        ``(B, K)``, positions ``(B, K, 2)``, model keys such as ``bs_gain (B, N, K)``; beamforming:
        ``channel (B, K, T, Nr, Nt, 2)``, ``tx_of_link``, ``weight``, ``noise`` ``(B, K)``, ``pmax
        (B, T)``, ``tx_pos (B, T, 2)``, ``rx_pos (B, K, 2)``; with ``csi_history`` n > 1 the history key,
        ``gain_history (B, n, K, K)`` / ``channel_history (B, n, K, T, Nr, Nt, 2)``, oldest first, its last
        entry the observed channel). ``row=i``: network ``i`` alone, without the batch axis (the single
        env's observation). The per-slot keys are the estimate of slot t - ``csi_delay``.
        """
        return self._assemble(self.slot, row, history=True)

    def true_observation(self, row: int | None = None) -> dict[str, np.ndarray]:
        """The observation an env with perfect CSI would show now: the per-slot keys of the true current
        slot (what the next action is scored on), the weights and constants as :meth:`observation`, no
        history key (the keys of ``csi_history=1``). Equal to :meth:`observation` when the CSI is perfect
        and ``csi_history=1``. ``row`` as in :meth:`observation`."""
        return self._assemble(self.true_slot, row, history=False)

    def truth(self, row: int | None = None) -> dict[str, np.ndarray]:
        """``{"true_<key>": ...}`` for every per-slot key (:attr:`slot_keys`) of the true current slot: what
        the envs put in ``info`` (new float32 arrays; ``row`` as in :meth:`observation`)."""
        true = self.true_slot
        if row is None:
            return {f"true_{key}": true[key].copy() for key in self._slot_keys}
        return {f"true_{key}": true[key][row].copy() for key in self._slot_keys}

    def _assemble(self, slot: dict[str, np.ndarray], row: int | None, history: bool) -> dict[str, np.ndarray]:
        obs = {}
        const = self._const
        for key in self._keys:
            if key == "weight":
                obs[key] = (self.weight if row is None else self.weight[row]).astype(np.float32)
            elif key in const:
                obs[key] = np.tile(const[key], (self.batch, 1)) if row is None else const[key].copy()
            elif key == self._history_key:
                if history:
                    past, ch = self._past[: self._history], self._channel_key
                    if row is None:
                        obs[key] = np.stack([p[ch] for p in past], axis=1)
                    else:
                        obs[key] = np.stack([p[ch][row] for p in past])
            else:
                obs[key] = slot[key].copy() if row is None else slot[key][row].copy()
        return obs

    def _f32(self, gain: np.ndarray) -> np.ndarray:
        # gains beyond float32 (a receiver on top of an interferer at high density) are clamped so that
        # the observation and the reward stay finite
        if self._clamp:
            gain = np.minimum(gain, F32_MAX)
        return gain.astype(np.float32)

    # --- the current slot and its estimates -----------------------------------------------------
    def _push(self, true: dict[str, np.ndarray], estimate: dict[str, np.ndarray]) -> None:
        """Make ``true`` the current slot t and keep its ``estimate``; the observed slot is then t - d."""
        self.true_slot = true
        if self._ring == 1:
            self.slot = estimate
            return
        past = self._past
        past.append(estimate)
        if len(past) > self._ring:
            del past[0]
        self.slot = past[-(self._delay + 1)] if len(past) > self._delay else estimate

    def _push_gain(self, gain: np.ndarray) -> None:
        # the gain-only fast path: no estimation error (see __init__), so the estimate is the slot itself
        slot = {"gain": self._f32(gain)}
        self._push(slot, slot)

    def _estimate(self, rng: np.random.Generator, layout: Layout, fading: np.ndarray,
                  true: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The observed keys of a slot: ``true`` itself without an estimation error, else the family's
        ``observe`` on the fading ``sqrt(1 - e^2) fading + e z``, ``z ~ CN(0, 1)`` (drawn from ``rng``)."""
        e = self._error
        if e == 0.0:
            return true
        noisy = complex_normal(rng, fading.shape)
        noisy *= e
        noisy += math.sqrt(max(0.0, 1.0 - e * e)) * fading
        return self.family.observe(self, layout, noisy)

    def _observe(self, rng: np.random.Generator) -> None:
        true = self.family.observe(self, self.layout, self.fading)
        self._push(true, self._estimate(rng, self.layout, self.fading, true))

    def _restart_rows(self, rng: np.random.Generator, index: np.ndarray) -> None:
        """First slot of new episodes for the networks ``index`` (their layout and fading just drawn, with a
        speed): the d + n - 1 earlier slots are simulated for those rows only and written into the true
        slot and the kept estimates; every other network's state, estimates included, is untouched."""
        model = self.model
        geometric = self.layout.batch_size is not None
        layout = self.layout.take(index) if geometric else self.layout
        fading = self.fading[index]
        true = self.family.observe(self, layout, fading)
        estimates = [self._estimate(rng, layout, fading, true)]
        for _ in range(self._warm):
            layout = model.move(layout, rng, self._distance)
            fading = evolve_fading(fading, rng, self.config.fading_correlation)
            true = self.family.observe(self, layout, fading)
            estimates.append(self._estimate(rng, layout, fading, true))
        if geometric:
            self.layout.put(index, layout)
        self.fading[index] = fading
        kept = self._past if self._ring > 1 else [self.slot]
        for dst, src in zip(kept, estimates[-len(kept):]):
            for key, val in src.items():
                dst[key][index] = val
        for key, val in true.items():
            self.true_slot[key][index] = val


#: ``info`` keys ``TRUTH_PREFIX + key`` carry the true current slot's per-slot observation keys
TRUTH_PREFIX = "true_"


def true_observation(obs: Mapping[str, Any], info: Mapping[str, Any]) -> dict[str, Any]:
    """The observation an env with perfect CSI would have shown in place of ``obs``: every key ``k`` of
    ``obs`` for which ``info`` has ``"true_" + k`` (the truth the envs put in the ``info`` returned with
    each observation: ``true_gain`` / ``true_channel``, positions, ``bs_gain``, the IBC's noise) takes that
    value, and the history key (``gain_history`` / ``channel_history``) is dropped; the result has the keys
    of ``csi_history=1``, so any solver of the family runs on it and ``Problem.rates(true_observation(obs,
    info), action)`` is the reward the next step pays for ``action``. Batched (vector env) or not (single
    env) alike; arrays are not copied. An ``info`` without truth leaves ``obs``'s keys as they are.

    >>> import gymnasium as gym, l2o_env
    >>> env = gym.make("PowerControl-IC-v0", speed=30.0, slot_duration=1e-3, csi_delay=1)
    >>> obs, info = env.reset(seed=0)
    >>> genie = true_observation(obs, info)      # the channel the next action is scored on
    >>> bool((genie["gain"] != obs["gain"]).any())
    True
    """
    out = {}
    for key, val in obs.items():
        if key.endswith("_history"):
            continue
        out[key] = info.get(TRUTH_PREFIX + key, val)
    return out


def _read_only(layout: Layout) -> Layout:
    """``layout`` with every array flagged read-only (a shared fixed layout must never be written)."""
    for arr in (layout.tx_pos, layout.rx_pos, layout.shadowing, layout.heading, *layout.extra.values()):
        if isinstance(arr, np.ndarray):
            arr.flags.writeable = False
    return layout


class SimHolder:
    """What the single env and the native vector env of every family share: a :class:`BatchSim` over one
    config and the step of ``B`` networks (check, feasibility, rates, next slot).

    Both classes call :meth:`_init_sim` in ``__init__`` after setting ``self.config``; the observation
    and autoreset code stays in each class because their shapes and episode rules differ.
    """

    config: EnvConfig

    def _init_sim(self, batch: int, shape: tuple[int, ...], who: str, batched: bool = True, **sim_kwargs: Any) -> None:
        """``shape``: the action shape ``step`` accepts, with the batch axis when ``batched`` (the vector env)
        and without it for the single env (``batch = 1``)."""
        self._sim = BatchSim(self.config, batch, **sim_kwargs)
        self._shape = shape
        self._who = who
        self._batched = batched
        self._count_key = self._sim.family.count_key
        self._ready = False

    def _step_batch(self, action: Any, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Check ``action`` (of ``self._shape``), make it feasible, score it on the current slot and move on.

        Returns the per-link rates ``(B, K)``, the weighted sum rates ``(B,)`` and the counts of what the
        feasibility step changed (``(B,)``; a scalar for the single env). A bad action raises before
        anything changes.
        """
        sim = self._sim
        checked = self.problem.check_action(action, self._shape, self._who)
        feasible, changed = sim.family.project(sim, checked)
        rates, wsr = sim.rates(feasible if self._batched else feasible[None])
        sim.advance(rng, rates)
        return rates, wsr, changed

    @property
    def count_key(self) -> str:
        """The ``info`` key counting what the feasibility step changed (``"clipped"``, ``"projected"``)."""
        return self._count_key

    @property
    def fading_correlation(self) -> float | None:
        """Slot-to-slot fading correlation rho = J0(2 pi f_d T); None when ``speed`` is None."""
        return self.config.fading_correlation

    @property
    def model(self):
        """The channel model instance (``l2o_env.channels``)."""
        return self.config.model
