"""Gymnasium power-control envs: one slot = one channel state, one power vector, one weighted sum rate.

The dynamics live in :mod:`l2o_env.envs.core` (shared with the native vector env and the
``ObservationSampler``); this module adds the Gymnasium API, the spaces and the per-ID classes.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from l2o_env.envs.core import PF_MIN_RATE, EnvConfig, SimHolder, check_action, clip_power, parse_config

__all__ = [
    "PowerControlEnv",
    "ICPowerControlEnv",
    "IMACPowerControlEnv",
    "AdHocPowerControlEnv",
    "D2DPowerControlEnv",
    "single_observation_space",
    "single_action_space",
]

_INF = np.float32(np.inf)


def single_observation_space(cfg: EnvConfig) -> spaces.Dict:
    """The Dict observation space of one network of ``cfg`` (float32 everywhere)."""
    k = cfg.num_links
    f32 = np.float32
    # (a degenerate Box with low == high, exact for constant noise, would make every gym.make warn)
    w_high = 1.0 / PF_MIN_RATE if cfg.weights == "proportional_fair" else 1.0
    d = {
        "gain": spaces.Box(0.0, _INF, (k, k), f32),
        "weight": spaces.Box(0.0, f32(w_high), (k,), f32),
        "noise": spaces.Box(0.0, _INF, (k,), f32),
        "pmax": spaces.Box(0.0, _INF, (k,), f32),
    }
    if cfg.has_geometry:
        d["tx_pos"] = spaces.Box(-_INF, _INF, (k, 2), f32)
        d["rx_pos"] = spaces.Box(-_INF, _INF, (k, 2), f32)
    for key, shape in cfg.extra_shapes.items():
        low = 0.0 if key.endswith("gain") else -_INF
        d[key] = spaces.Box(low, _INF, shape, f32)
    return spaces.Dict(d)


def single_action_space(cfg: EnvConfig) -> spaces.Box:
    """``Box(0, pmax, (K,), float32)``: transmit powers in watts."""
    pmax = cfg.pmax.astype(np.float32)
    return spaces.Box(np.zeros_like(pmax), pmax, dtype=np.float32)


class PowerControlEnv(SimHolder, gym.Env):
    r"""Weighted-sum-rate power control on a K-link interference network (one slot per step).

    ## Description

    ``K`` transmitter-receiver links share a band. Each step the agent sees the current channel state
    (power gains between every transmitter and every receiver, the link weights, the noise powers and
    the power budgets) and answers with a transmit power per link. The reward is the weighted sum rate
    that this power vector achieves on that channel state. The channel then moves to the next slot.

    The channel model depends on the ID (``l2o_env.scenarios``): ``PowerControl-IC-v0`` (Gaussian
    interference channel, Sun et al. 2018 Sec. V-A), ``PowerControl-IMAC-v0`` (interfering multiple
    access, ibid.), ``PowerControl-AdHoc-v0`` (UWMMSE paper, Sec. IV), ``PowerControl-D2D-v0`` (WCGCN
    paper, Sec. V-B). Gains follow DESIGN.md: ``gain[i, j] = |h_ij|^2`` from transmitter ``j`` to the
    receiver of link ``i`` (row = receiver, diagonal = direct links).

    ## Action Space

    ``Box(0, pmax, (K,), float32)``: the transmit power of each link in watts (``pmax`` is 1 W for the
    IC, IMAC and ad hoc envs and 10 W (40 dBm) for D2D unless overridden). Values outside ``[0, pmax]``
    are clipped and counted in ``info["clipped"]``. An action with NaN/inf, the wrong shape or a
    non-numeric dtype raises ``ValueError`` and leaves the env untouched.

    ## Observation Space

    A ``Dict`` of float32 arrays:

    | key | shape | meaning | min | max |
    |---|---|---|---|---|
    | ``gain`` | (K, K) | power gains ``|h_ij|^2`` (receiver i, transmitter j) | 0 | inf |
    | ``weight`` | (K,) | weights ``w_i`` of the reward | 0 | 1 (100 for proportional fair) |
    | ``noise`` | (K,) | noise power ``sigma_i^2`` (W), constant | 0 | inf |
    | ``pmax`` | (K,) | power budget (W), constant | 0 | inf |
    | ``tx_pos`` | (K, 2) | transmitter positions (m); geometric envs only | -inf | inf |
    | ``rx_pos`` | (K, 2) | receiver positions (m; the serving BS in the IMAC); geometric only | -inf | inf |
    | ``bs_gain`` | (N, K) | gain from every user to every base station; IMAC only | 0 | inf |

    ## Rewards

    The weighted sum rate (bit/s/Hz) of the clipped action ``p`` on the channel state it answered,
    computed by :func:`l2o_env.rates.weighted_sum_rate` on the observed float32 values:

    .. math::

        r_t = \sum_{i=1}^{K} w_i \log_2\Big(1 + \frac{g_{ii} p_i}{\sigma_i^2 + \sum_{j \ne i} g_{ij} p_j}\Big)

    ``info`` carries the per-link ``rates`` (K,), the unweighted ``sum_rate`` and ``clipped`` (the
    number of action entries clipped into ``[0, pmax]``).

    ## Starting State

    ``reset`` draws a network (layout, shadowing, fading) from the channel model and the weights
    (all 1; U[0, 1] per link with ``weights="random"``; all 1 with ``"proportional_fair"``, whose
    averaged rates restart at 1 bit/s/Hz). The ad hoc env with ``topology="fixed"`` (its default)
    draws no layout at reset: its one layout belongs to the configuration, drawn once from
    ``np.random.default_rng(layout_seed)`` when the env is made, and every episode starts from it
    whatever the reset seed (the seed drives the fading and weights); with a speed each episode starts
    from that drop and moves from there. ``reset(seed=s)`` then ``reset()`` reproduces a sequence.

    ## Episode End

    - Termination: never (the network has no terminal state).
    - Truncation: after ``max_episode_steps`` slots (100 by default), added by the ``TimeLimit``
      wrapper of ``gym.make``; the env itself never truncates.

    ## Arguments

    Every knob is a ``gym.make`` keyword:

    | keyword | default | meaning |
    |---|---|---|
    | ``num_links`` | IC 10, IMAC 12, AdHoc 20, D2D 50 | K |
    | ``num_cells`` | 3 | IMAC only: N base stations, must divide K |
    | ``density`` | 1 | transmitters in an area scaled by 1/density (pair offsets kept); geometric envs only |
    | ``speed`` | None | m/s. None: every slot an independent draw. A number: positions persist and move, fading is Jakes-correlated |
    | ``slot_duration`` | 0.02 | s (Nasir & Guo's 20 ms) |
    | ``carrier_frequency`` | 2.4e9 | Hz, sets the Doppler ``f_d = speed f_c / c`` |
    | ``weights`` | "uniform" | "uniform", "random" (U[0,1] per link and episode), "proportional_fair" |
    | ``pf_smoothing`` | 0.1 | beta of the proportional-fair average ``R <- (1-beta) R + beta r`` |
    | ``noise``, ``pmax`` | model's | W, scalar or per link |
    | ``snr_db`` | - | IC only: ``noise = pmax / 10^(snr_db/10)`` (WCGCN's "10 dB") |
    | ``topology`` | "fixed" | AdHoc only: "fixed" (one layout for every episode and sub-env) or "random" (a new one per episode) |
    | ``layout_seed`` | 0 | AdHoc with ``topology="fixed"`` only: integer >= 0, the fixed layout is ``sample_layout(default_rng(layout_seed), 1)`` |
    | model knobs | | IMAC ``cell_radius``, ``inner_radius``, ``cell_shape``; AdHoc ``noise_std``; D2D ``pair_distance`` ... |

    With a speed, positions move ``speed * slot_duration`` m per slot and path loss is recomputed;
    shadowing is kept for the whole episode; the fading follows ``h_t = rho h_(t-1) + sqrt(1-rho^2) e_t``
    with ``rho = J0(2 pi f_d T)`` (``env.unwrapped.fading_correlation``; None without a speed). The IC
    has no geometry: a speed only correlates its fading.

    >>> import gymnasium as gym, l2o_env
    >>> env = gym.make("PowerControl-IMAC-v0", num_cells=3, num_links=18, speed=1.0)
    >>> obs, info = env.reset(seed=0)
    >>> obs["gain"].shape, obs["bs_gain"].shape
    ((18, 18), (3, 18))

    ## Version History

    - v0: initial version.
    """

    metadata = {"render_modes": []}
    #: the registered ID this class implements (set by the per-ID subclasses)
    ENV_ID: str = ""

    def __init__(self, env_id: str | None = None, render_mode: str | None = None, **kwargs: Any):
        env_id = env_id or self.ENV_ID
        if not env_id:
            raise ValueError("PowerControlEnv: pass env_id (one of l2o_env.scenarios.ENV_IDS) or use a per-ID subclass")
        if render_mode is not None:
            raise ValueError(f"{env_id}: render_mode={render_mode!r} is not supported (this env has no rendering)")
        self.config = parse_config(env_id, **kwargs)
        self.env_id = self.config.env_id
        self.num_links = self.config.num_links
        self.render_mode = None
        self.observation_space = single_observation_space(self.config)
        self.action_space = single_action_space(self.config)
        self._init_sim(1, (self.num_links,), f"{self.env_id}.step", count_steps=False)
        self._uniform = self.config.weights == "uniform"

    def _obs(self) -> dict[str, np.ndarray]:
        sim = self._sim
        obs = {
            "gain": sim.gain[0].copy(),
            "weight": sim.weight[0].astype(np.float32),
            "noise": self._noise32.copy(),
            "pmax": self._pmax32.copy(),
        }
        for key, val in sim.extras.items():
            obs[key] = val[0].copy()
        return obs

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if options:
            raise ValueError(f"{self.env_id}.reset: options are not supported, got {options!r}")
        self._sim.reset(self.np_random)
        self._ready = True
        return self._obs(), {}

    def step(self, action):
        if not self._ready:
            raise ValueError(f"{self.env_id}: step() called before reset(); call env.reset(seed=...) first")
        power = check_action(action, self._shape, self._who)
        feasible, clipped = clip_power(power, self._pmax, self._pmax_low)
        sim = self._sim
        rates, wsr = sim.rates(feasible[None])
        sim.advance(self.np_random, rates)
        r = rates[0]
        reward = float(wsr[0])
        sum_rate = reward if self._uniform else float(r.sum())
        info = {"rates": r, "sum_rate": sum_rate, "clipped": int(clipped)}
        return self._obs(), reward, False, False, info


class ICPowerControlEnv(PowerControlEnv):
    """``PowerControl-IC-v0``: Gaussian interference channel (Sun et al. 2018, Sec. V-A); see :class:`PowerControlEnv`."""

    ENV_ID = "PowerControl-IC-v0"

    def __init__(self, render_mode: str | None = None, **kwargs: Any):
        super().__init__(self.ENV_ID, render_mode=render_mode, **kwargs)


class IMACPowerControlEnv(PowerControlEnv):
    """``PowerControl-IMAC-v0``: interfering multiple-access channel (Sun et al. 2018, Sec. V-A); see :class:`PowerControlEnv`."""

    ENV_ID = "PowerControl-IMAC-v0"

    def __init__(self, render_mode: str | None = None, **kwargs: Any):
        super().__init__(self.ENV_ID, render_mode=render_mode, **kwargs)


class AdHocPowerControlEnv(PowerControlEnv):
    """``PowerControl-AdHoc-v0``: ad hoc network of the UWMMSE paper (Sec. IV); see :class:`PowerControlEnv`."""

    ENV_ID = "PowerControl-AdHoc-v0"

    def __init__(self, render_mode: str | None = None, **kwargs: Any):
        super().__init__(self.ENV_ID, render_mode=render_mode, **kwargs)


class D2DPowerControlEnv(PowerControlEnv):
    """``PowerControl-D2D-v0``: D2D weighted sum rate of the WCGCN paper (Sec. V-B); see :class:`PowerControlEnv`."""

    ENV_ID = "PowerControl-D2D-v0"

    def __init__(self, render_mode: str | None = None, **kwargs: Any):
        super().__init__(self.ENV_ID, render_mode=render_mode, **kwargs)
