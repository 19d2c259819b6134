"""Gymnasium power-control env: one slot = one channel state, one power vector, one weighted sum rate.

One class, :class:`PowerControlEnv`, serves every power-control scenario of :mod:`l2o_env.scenarios`:
the registration passes the scenario as ``kwargs={"env_id": ID}`` and the scenario's row sets the
channel model, the defaults and which knobs apply (``snr_db_knob``, ``topology_knob``). The dynamics
live in :mod:`l2o_env.envs.core` (shared with the native vector env and the ``ObservationSampler``);
the spaces and the action check in :mod:`l2o_env.problems.power`; this module adds the Gymnasium API.
Its family-free part, :class:`ScenarioEnv` (and :class:`ScenarioEnvMixin`, shared with the vector
env), is also the base of the beamforming env (:mod:`l2o_env.envs.beamforming`).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import EnvSpec, registry

from l2o_env.envs.core import EnvConfig, SimHolder, parse_config
from l2o_env.envs.render import RENDER_FPS  # (matplotlib is imported lazily, by a render_mode only)
from l2o_env.problems import Problem, get_problem
from l2o_env.problems.power import single_action_space, single_observation_space
from l2o_env.scenarios import get_scenario

__all__ = ["PowerControlEnv", "ScenarioEnv", "ScenarioEnvMixin", "single_observation_space", "single_action_space"]


class ScenarioEnvMixin(SimHolder):
    """What the single env and the native vector env of one problem family share beyond the simulator:
    building the validated configuration of a scenario, its :class:`~l2o_env.problems.Problem`, and
    guarding the ``spec`` that ``gym.make`` attaches.

    ``gym.make(ID, **kw)`` merges the registered ``kwargs={"env_id": ID}`` with ``kw``, so a user's
    ``env_id=`` would silently build another scenario under ``ID``'s name. ``gym.make`` sets ``env.spec``
    right after construction; the setter compares the scenario that ``spec.id`` was registered with to
    the one built and raises a ValueError when they differ (an ID registered without an ``env_id``
    keyword, e.g. by a user with ``entry_point=PowerControlEnv``, is not checked).
    """

    problem_name: str = "power"

    def _configure(self, env_id: str | None, render_mode: str | None, kwargs: dict[str, Any], who: str) -> None:
        if not env_id:
            raise ValueError(
                f"{who}: pass env_id (one of l2o_env.scenarios.ENV_IDS), e.g. gym.make(ID) passes it from the registration"
            )
        scenario = get_scenario(env_id)
        if scenario.problem != self.problem_name:
            raise ValueError(
                f"{who}: {scenario.env_id} is a {scenario.problem!r} scenario, not {self.problem_name!r}; "
                f"build it with gym.make({scenario.env_id!r})"
            )
        modes = self.metadata["render_modes"]
        if render_mode is not None and render_mode not in modes:
            raise ValueError(
                f"{scenario.env_id}: render_mode={render_mode!r} is not supported by {who}; use one of {modes} or None"
                + ("" if "human" in modes else " (to watch, render a single env: gym.make(ID, render_mode='human'))")
            )
        self.config: EnvConfig = parse_config(scenario.env_id, **kwargs)
        self.env_id = self.config.env_id
        self.problem: Problem = get_problem(self.problem_name)
        self.num_links = self.config.num_links
        self.render_mode = render_mode
        self._picture = None  # l2o_env.envs.render.Picture, made by _init_picture when render_mode is set

    def _init_picture(self, batch: int) -> None:
        """The frames of ``render_mode`` (nothing without one; matplotlib is imported only then)."""
        if self.render_mode is not None:
            from l2o_env.envs.render import Picture

            self._picture = Picture(self.config, batch, fps=self.metadata["render_fps"])

    def _record_step(self, action: Any, rates: np.ndarray) -> None:
        """Keep the last (already validated) action, made feasible, and its rates for the picture; reads
        the state only (no random draw)."""
        if self._picture is not None:
            feasible, _ = self._sim.project(np.array(action, dtype=np.float64))
            self._picture.record(feasible, rates)

    def _frame(self, row: int) -> np.ndarray:
        return self._picture.frame(self._sim.true_observation(row), row)

    def close(self, **kwargs: Any) -> None:
        """Close the picture's figures (``render_mode``), then what Gymnasium's ``close`` does."""
        picture = getattr(self, "_picture", None)
        if picture is not None:
            picture.close()
        super().close(**kwargs)

    @property
    def spec(self) -> EnvSpec | None:
        """The ``EnvSpec`` that ``gym.make`` / ``gym.make_vec`` attached (None when built directly)."""
        return self.__dict__.get("_spec")

    @spec.setter
    def spec(self, spec: EnvSpec | None) -> None:
        if spec is not None:
            registered = registry.get(spec.id)
            want = None if registered is None else registered.kwargs.get("env_id")
            if want is not None and get_scenario(want).env_id != self.env_id:
                raise ValueError(
                    f"{spec.id}: env_id={self.env_id!r} conflicts with the scenario this ID is registered with "
                    f"({want!r}); drop the env_id keyword, or make {self.env_id!r} itself"
                )
        self.__dict__["_spec"] = spec


class ScenarioEnv(ScenarioEnvMixin, gym.Env):
    """The single env of any problem family: one network (a :class:`~l2o_env.envs.core.BatchSim` of one),
    one slot per step; subclasses set :attr:`problem_name` and document their family.

    ``step(action)`` checks the action (``Problem.check_action``: a ValueError leaves the env untouched),
    makes it feasible (the family's rule), returns the weighted sum rate of the feasible action on the
    slot it answered (its true channel) and moves to the next slot; ``info`` has the per-link ``rates``,
    the unweighted ``sum_rate`` and the count of what feasibility changed (``clipped`` / ``projected``) of
    that step, and (``reset`` too) the truth of the new current slot, ``true_<key>`` for every per-slot key
    (``true_gain``, ``true_channel``, positions ...): with ``csi_delay`` / ``csi_error`` the observation is
    an aged or noisy estimate and the next reward is computed on this truth
    (:func:`l2o_env.envs.core.true_observation` merges it into an observation). The episode never
    terminates; ``gym.make`` adds the time limit.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": RENDER_FPS}

    def __init__(self, env_id: str | None = None, render_mode: str | None = None, **kwargs: Any):
        who = type(self).__name__
        self._configure(env_id, render_mode, kwargs, who)
        self.observation_space = self.problem.observation_space(self.config)
        self.action_space = self.problem.action_space(self.config)
        self._init_sim(1, self.action_space.shape, f"{self.env_id}.step", batched=False, count_steps=False)
        self._uniform = self.config.weights == "uniform"
        self._init_picture(1)

    def _obs(self) -> dict[str, np.ndarray]:
        return self._sim.observation(0)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        if options:
            raise ValueError(f"{self.env_id}.reset: options are not supported, got {options!r}")
        self._sim.reset(self.np_random)
        self._ready = True
        if self._picture is not None:
            self._picture.reset()
            if self.render_mode == "human":
                self.render()
        return self._obs(), self._sim.truth(0)

    def render(self):
        """The picture of the current slot (``l2o_env.envs.render``): with ``render_mode="rgb_array"`` an
        RGB frame ``(480, 640, 3)`` uint8; with ``"human"`` the same frame in a matplotlib figure (drawn at
        every reset and step; returns None). The layout (geometric scenarios) or the channel's heat map (the
        IC, the MISO), the links coloured by the last action's power and sized by their rates."""
        if self._picture is None:
            gym.logger.warn(
                f"{self.env_id}: render() without a render_mode returns None; make the env with "
                "render_mode='rgb_array' or 'human'"
            )
            return None
        if not self._ready:
            raise ValueError(f"{self.env_id}: render() called before reset(); call env.reset(seed=...) first")
        frame = self._frame(0)
        if self.render_mode == "human":
            self._picture.show(frame)
            return None
        return frame

    def true_observation(self) -> dict[str, np.ndarray]:
        """The observation an env with perfect CSI would show now (``BatchSim.true_observation``): the
        true channel of the current slot, the one the next action is scored on (keys of ``csi_history=1``)."""
        return self._sim.true_observation(0)

    def step(self, action):
        if not self._ready:
            raise ValueError(f"{self.env_id}: step() called before reset(); call env.reset(seed=...) first")
        rates, wsr, changed = self._step_batch(action, self.np_random)
        r = rates[0]
        reward = float(wsr[0])
        sum_rate = reward if self._uniform else float(r.sum())
        info = {"rates": r, "sum_rate": sum_rate, self._count_key: int(changed), **self._sim.truth(0)}
        if self._picture is not None:
            self._record_step(action, rates)
            if self.render_mode == "human":
                self.render()
        return self._obs(), reward, False, False, info


class PowerControlEnv(ScenarioEnv):
    r"""Weighted-sum-rate power control on a K-link interference network (one slot per step).

    ## Description

    ``K`` transmitter-receiver links share a band. Each step the agent sees the current channel state
    (power gains between every transmitter and every receiver, the link weights, the noise powers and
    the power budgets) and answers with a transmit power per link. The reward is the weighted sum rate
    that this power vector achieves on that channel state. The channel then moves to the next slot.

    The channel model, its defaults and the knobs that apply come from the scenario of the ID (one row
    of ``l2o_env.scenarios``, passed by the registration as ``env_id``): ``PowerControl-IC-v0`` (Gaussian
    interference channel, Sun et al. 2018 Sec. V-A), ``PowerControl-IMAC-v0`` (interfering multiple
    access, ibid.), ``PowerControl-AdHoc-v0`` (UWMMSE paper, Sec. IV), ``PowerControl-D2D-v0`` (WCGCN
    paper, Sec. V-B), and any row added to the table. Gains follow DESIGN.md: ``gain[i, j] = |h_ij|^2`` from transmitter ``j`` to the
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
    | ``gain_history`` | (n, K, K) | the last ``n`` observed gain matrices, oldest first (the last is ``gain``); only with ``csi_history=n > 1`` | 0 | inf |

    With ``csi_delay=d`` the per-slot keys (gains, positions, ``bs_gain``) are those of slot ``t - d``;
    with ``csi_error=e`` the gains are ``|sqrt(1 - e^2) h + e n|^2``, ``n`` complex Gaussian with the
    large-scale power of each entry (drawn once per slot). The true current channel is never observed: it
    is in ``info`` (``true_gain``, and ``true_tx_pos``, ``true_rx_pos``, ``true_bs_gain`` where observed).

    ## Rewards

    The weighted sum rate (bit/s/Hz) of the clipped action ``p`` on the true channel state of the slot it
    answered, computed by :func:`l2o_env.rates.weighted_sum_rate` on float32 values (the observed ones
    when the CSI is perfect, the default):

    .. math::

        r_t = \sum_{i=1}^{K} w_i \log_2\Big(1 + \frac{g_{ii} p_i}{\sigma_i^2 + \sum_{j \ne i} g_{ij} p_j}\Big)

    ``info`` carries the per-link ``rates`` (K,), the unweighted ``sum_rate`` and ``clipped`` (the
    number of action entries clipped into ``[0, pmax]``) of the step, and the truth of the new current
    slot (``true_gain`` ...; ``reset``'s ``info`` too): the gains the next action is scored on.

    ## Starting State

    ``reset`` draws a network (layout, shadowing, fading) from the channel model and the weights
    (all 1; U[0, 1] per link with ``weights="random"``; all 1 with ``"proportional_fair"``, whose
    averaged rates restart at 1 bit/s/Hz). The ad hoc env with ``topology="fixed"`` (its default)
    draws no layout at reset: its one layout belongs to the configuration, drawn once from
    ``np.random.default_rng(layout_seed)`` when the env is made, and every episode starts from it
    whatever the reset seed (the seed drives the fading and weights); with a speed each episode starts
    from that drop and moves from there. With ``csi_delay=d`` and ``csi_history=n`` the ``d + n - 1``
    slots before the first observation are simulated too (no special first slot).
    ``reset(seed=s)`` then ``reset()`` reproduces a sequence.

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
    | ``snr_db`` | - | scenarios with ``snr_db_knob`` (the IC): ``noise = pmax / 10^(snr_db/10)`` (WCGCN's "10 dB") |
    | ``topology`` | scenario's | scenarios with ``topology_knob`` (AdHoc, default "fixed"): "fixed" (one layout for every episode and sub-env) or "random" (a new one per episode) |
    | ``layout_seed`` | 0 | with ``topology="fixed"`` only: integer >= 0, the fixed layout is ``sample_layout(default_rng(layout_seed), 1)`` |
    | ``csi_delay`` | 0 | integer >= 0: the observation holds the channel of ``d`` slots earlier; the reward is paid on the current one. With ``speed=None`` an earlier slot is an independent draw |
    | ``csi_error`` | 0 | in [0, 1]: observed fading ``sqrt(1 - e^2) h + e n`` (MMSE estimation error) |
    | ``csi_history`` | 1 | integer >= 1: ``n > 1`` adds ``gain_history (n, K, K)`` |
    | model knobs | | IMAC ``cell_radius``, ``inner_radius``, ``cell_shape``; AdHoc ``noise_std``; D2D ``pair_distance`` ... |
    | ``render_mode`` | None | "rgb_array": ``render()`` is a (480, 640, 3) uint8 frame (the layout with the last powers; the IC: its gain heat map); "human": the same with matplotlib (``l2o_env.envs.render``) |

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

    problem_name = "power"
