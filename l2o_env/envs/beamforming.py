"""Gymnasium beamforming envs: one slot = one multi-antenna channel state, one set of precoders, one
weighted sum rate.

One single env class, :class:`BeamformingEnv`, and one native vector env class,
:class:`BeamformingVectorEnv`, serve every ``problem="beamforming"`` scenario of :mod:`l2o_env.scenarios`
(the registration passes the scenario as ``kwargs={"env_id": ID}``). Everything but the documentation is
shared with the power-control envs: the configuration and the batched slot dynamics
(:mod:`l2o_env.envs.core`, whose ``FAMILIES["beamforming"]`` says what a slot observes and how precoders
are made feasible), reset/step (:class:`~l2o_env.envs.power_control.ScenarioEnv`) and the autoreset rules
(:class:`~l2o_env.envs.vector.ScenarioVectorEnv`); the spaces, the action check, the projection and the
rates live in :mod:`l2o_env.problems.beamforming`.
"""

from __future__ import annotations

from l2o_env.envs.power_control import ScenarioEnv
from l2o_env.envs.vector import ScenarioVectorEnv

__all__ = ["BeamformingEnv", "BeamformingVectorEnv"]


class BeamformingEnv(ScenarioEnv):
    r"""Weighted-sum-rate beamforming on a multi-antenna network (one slot per step).

    ## Description

    ``T`` transmitters with ``Nt`` antennas serve ``K`` links (receivers with ``Nr`` antennas); link ``k``
    is served by transmitter ``tx_of_link[k]``. Each step the agent sees the channel of the slot (every
    transmitter to every receiver), the weights, the noise powers and the budgets, and answers with one
    precoder per link. The reward is the weighted sum rate those precoders achieve on that channel; the
    channel then moves to the next slot. Scenarios (rows of ``l2o_env.scenarios``):
    ``Beamforming-MISO-v0`` (one base station, single-antenna users; Pellaco et al. 2020),
    ``Beamforming-IBC-v0`` (multi-cell MIMO downlink; Song et al. 2023, problem of Shi et al. 2011),
    ``Beamforming-D2D-v0`` (multi-antenna D2D pairs; Shen et al. 2021, Sec. V-C).

    The received signal of link ``k`` is ``y_k = sum_j H[k, t(j)] V_j s_j + n_k`` with ``H[k, t]`` the
    ``Nr x Nt`` channel matrix from transmitter ``t`` to receiver ``k`` (it multiplies the precoder itself:
    no conjugate transpose) and ``t(j) = tx_of_link[j]``.

    ## Action Space

    ``Box(-sqrt(pmax_t(k)), sqrt(pmax_t(k)), (K, Nt, d, 2), float32)``: the precoder ``V_k`` (``Nt x d``,
    ``d = Nr`` streams, real and imaginary parts on the last axis) of every link. Feasible when every
    transmitter is within its budget, ``sum_{k: t(k) = t} ||V_k||_F^2 <= pmax_t``; a transmitter over its
    budget has its precoders scaled by ``sqrt(pmax_t / used)`` onto it and is counted in
    ``info["projected"]``. An action with NaN/inf, the wrong shape or a non-numeric (or complex) dtype
    raises ``ValueError`` and leaves the env untouched.

    ## Observation Space

    A ``Dict`` of float32 arrays:

    | key | shape | meaning | min | max |
    |---|---|---|---|---|
    | ``channel`` | (K, T, Nr, Nt, 2) | ``H[k, t]``, real/imaginary last | -inf | inf |
    | ``tx_of_link`` | (K,) | transmitter of each link (integers as float32) | 0 | max(T-1, 1) |
    | ``weight`` | (K,) | weights ``w_k`` of the reward | 0 | 1 (100 for proportional fair) |
    | ``noise`` | (K,) | noise power ``sigma_k^2`` (W); the IBC's follows each slot's channel | 0 | inf |
    | ``pmax`` | (T,) | budget of each transmitter (W), constant | 0 | inf |
    | ``tx_pos`` | (T, 2) | transmitter positions (m); IBC and D2D only | -inf | inf |
    | ``rx_pos`` | (K, 2) | receiver positions (m); IBC and D2D only | -inf | inf |
    | ``channel_history`` | (n, K, T, Nr, Nt, 2) | the last ``n`` observed channels, oldest first (the last is ``channel``); only with ``csi_history=n > 1`` | -inf | inf |

    With ``csi_delay=d`` the per-slot keys (channel, positions, the IBC's noise) are those of slot
    ``t - d``; with ``csi_error=e`` the channel is ``sqrt(1 - e^2) H + e N``, ``N`` complex Gaussian with
    the large-scale power of each entry (drawn once per slot; the IBC's observed noise follows the observed
    channel). The true current channel is in ``info`` (``true_channel``, ``true_noise`` where it follows
    the channel, positions), never in the observation.

    ## Rewards

    The weighted sum rate (bit/s/Hz) of the projected precoders on the true channel of the slot they
    answered, from float32 values (the observed ones when the CSI is perfect, the default;
    :func:`l2o_env.rates.mimo_link_rates`):

    .. math::

        r_t = \sum_k w_k \log_2\det\Big(I + H_{k,t(k)} V_k V_k^H H_{k,t(k)}^H J_k^{-1}\Big), \quad
        J_k = \sigma_k^2 I + \sum_{j \ne k} H_{k,t(j)} V_j V_j^H H_{k,t(j)}^H

    ``info`` carries the per-link ``rates`` (K,), the unweighted ``sum_rate`` and ``projected`` (the number
    of transmitters scaled back onto their budget) of the step, and the truth of the new current slot
    (``true_channel`` ...; ``reset``'s ``info`` too).

    ## Starting State

    ``reset`` draws a network (layout, shadowing, fading) from the channel model and the weights (all 1;
    U[0, 1] per link with ``weights="random"``; all 1 with ``"proportional_fair"``, whose averaged rates
    restart at 1 bit/s/Hz). ``reset(seed=s)`` then ``reset()`` reproduces a sequence.

    ## Episode End

    Never terminates; ``gym.make`` truncates after ``max_episode_steps`` slots (100).

    ## Arguments

    | keyword | default | meaning |
    |---|---|---|
    | ``num_users``, ``num_antennas``, ``snr_db`` | 4, 4, 10 | MISO: N users, M antennas, SNR = P / sigma^2 with sigma^2 = 1 (P = 10^(snr_db/10) W) |
    | ``scale`` | "small" | IBC: "small" (2 cells x 4 users, Nt = 8), "moderate" (2 x 8, Nt = 16), "large" (2 x 16, Nt = 32); Nr = d = 2 |
    | ``interference``, ``inter_site_distance`` | "low" | IBC: "low" (2.8 km) or "high" (0.5 km), or a distance in m |
    | ``num_cells``, ``users_per_cell``, ``num_antennas``, ``num_rx_antennas`` | scale's | IBC: override the scale |
    | ``snr_db``, ``user_distance``, ``shadowing_db`` | 5, (100, 300), 8 | IBC: SNR of the noise rule, user ring (m), shadowing (dB) |
    | ``num_links``, ``num_antennas`` | 50, 2 | D2D: pairs, transmit antennas |
    | ``pathloss`` | "authors" | D2D: "authors" (4.4e5 / d^1.88, 3.15 dB shadowing, noise 1, Pmax 1) or "itu1411" (the power-control D2D model) |
    | ``pair_distance``, ``area_side``, ``density`` | (2, 65), 1000, 1 | D2D geometry (m); ``density`` also scales the IBC layout |
    | ``speed``, ``slot_duration``, ``carrier_frequency`` | None, 0.02, 2.4e9 | mobility: Jakes fading per antenna pair, moving users/pairs |
    | ``weights``, ``pf_smoothing`` | "uniform", 0.1 | as power control |
    | ``csi_delay``, ``csi_error``, ``csi_history`` | 0, 0, 1 | aged / noisy channel state, as power control; ``csi_history=n > 1`` adds ``channel_history`` |
    | ``noise``, ``pmax`` | model's | W: noise per link, budget per transmitter |
    | ``render_mode`` | None | "rgb_array" / "human": the layout (IBC, D2D) or the channel's heat map (MISO) with the last precoders' powers, as power control (``l2o_env.envs.render``) |

    >>> import gymnasium as gym, l2o_env
    >>> env = gym.make("Beamforming-IBC-v0", scale="small", interference="high")
    >>> obs, info = env.reset(seed=0)
    >>> obs["channel"].shape, obs["pmax"].shape, env.action_space.shape
    ((8, 2, 2, 8, 2), (2,), (8, 8, 2, 2))

    ## Version History

    - v0: initial version.
    """

    problem_name = "beamforming"


class BeamformingVectorEnv(ScenarioVectorEnv):
    """``num_envs`` independent copies of a beamforming env (:class:`BeamformingEnv`), batched
    (:class:`~l2o_env.envs.vector.ScenarioVectorEnv`: autoreset ``SAME_STEP``, ``info["final_obs"]``,
    ``reset_mask``): actions ``(B, K, Nt, d, 2)``, ``info["projected"] (B,)``."""

    problem_name = "beamforming"
