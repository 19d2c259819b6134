"""WMMSE on the MMSE prediction of the current channel from aged / noisy observations: the classical
predictive baseline for the envs' ``csi_delay`` / ``csi_error`` (DESIGN.md, "Channel-state information")."""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import numpy as np
import torch

from l2o_env.validation import choice, integer, real
from solvers.wmmse import WMMSE

__all__ = ["WMMSEPredictive"]

_LARGE_SCALE = ("memory", "history")
#: beamforming: the prediction scale c is floored here (c = 0 would leave WMMSE a zero channel)
_MIN_SCALE = 1e-3


class WMMSEPredictive(WMMSE):
    r"""Predictive WMMSE: WMMSE on the MMSE prediction of the current channel from aged or noisy CSI (genie-aided in rho).

    The envs' channel model (DESIGN.md, "Channel-state information"): every channel entry is
    ``h = sqrt(L) f``, ``L`` its large-scale power and ``f ~ CN(0, 1)`` its fading, which follows the
    Jakes/Gauss-Markov recursion ``f_t = rho f_(t-1) + sqrt(1 - rho^2) e_t`` (``rho = J0(2 pi f_d T)``); the
    observation at slot t is the estimate of slot t - d, ``h_hat = sqrt(L) (sqrt(1 - e^2) f_(t-d) + e z)``,
    ``z ~ CN(0, 1)`` (``csi_delay`` d, ``csi_error`` e). Normalised by ``sqrt(L)``, the true and the observed
    coefficient are jointly CN(0, 1) with correlation

    .. math::

        c = \rho^d \sqrt{1 - e^2}, \qquad f_t \mid h_{hat} \sim \mathcal{CN}(c\, h_{hat} / \sqrt{L},\ 1 - c^2).

    Power control observes gains only, ``g_hat = |h_hat|^2``; the conditional mean of the current gain needs
    nothing else (not the phase):

    .. math::

        \mathbb{E}\big[|h_t|^2 \mid g_{hat}\big] = c^2\, g_{hat} + (1 - c^2)\, L,

    so the solver runs WMMSE on ``c^2 g_hat + (1 - c^2) L_hat`` for every entry (direct and cross gains:
    the expected interference is exact, the direct gain its mean). Beamforming: the MMSE predictor of the
    complex channel is ``c H_hat`` and its error has power ``(1 - c^2) L`` per entry, so the interference
    link j causes at receiver k has the mean ``|c H_hat_(k,t(j)) V_j|^2 + (1 - c^2) L_(k,t(j)) ||V_j||^2``
    (per receive antenna). The solver runs the MIMO WMMSE on ``c H_hat`` with the second part as noise,
    ``noise'_k = noise_k + (1 - c^2) sum_(j != k) L_(k,t(j)) ||V_j||^2``, at the powers ``||V_j||^2`` of the
    previous pass: a first pass on ``c H_hat`` alone, then ``passes`` passes (default 2) with the noise of
    the one before (the powers are what WMMSE chose, not pmax: counting every transmitter at full power
    over-states the interference and lost 9 points on Beamforming-D2D-v0). The own link's error is left
    out (it is signal power the receiver, which knows its channel, can use; counting it as noise lost more).
    ``passes=0`` is WMMSE on the scaled channel alone. With ``c = 1`` (perfect CSI, or ``rho = 1``) it is
    :class:`~solvers.wmmse.WMMSE` exactly.

    Genie-aided: ``rho``, ``d`` and ``e`` are given, not estimated. Evaluated by ``l2o eval`` they come from
    the env of every sweep point (``from_env``: ``rho`` is the env's ``fading_correlation``, 0 for
    ``speed=None``, whose slots are independent); given by hand they win. The large scale ``L`` is not in
    the observation (the D2D's 8 dB shadowing is per entry; positions give path loss at most), so it is
    estimated from what was observed (``E|h_hat|^2 = L`` whatever e):

    - ``large_scale="memory"`` (default): the mean of the observed gains (beamforming: of ``|H_hat|^2``
      over the antennas of each link-transmitter pair) of every slot seen since the last :meth:`reset`,
      seeded with the observation's history (``csi_history > 1``) at the first call; after ``window`` slots
      an exponential average of that length. Stateful like warm-started WMMSE: call :meth:`reset` at an
      episode start (the harness does), and the memory restarts when the batch shape changes. With only
      one slot seen the estimate is the observation itself and the prediction equals it.
    - ``large_scale="history"``: stateless, the mean over the observation's history key (``gain_history``
      / ``channel_history``); without a history (``csi_history=1``) this is plain WMMSE on the observation.

    Measured (``l2o eval``, 30 m/s, 1 ms slots, ``csi_delay=1``, rho = 0.51, 500 slots in 10-slot
    episodes; % of WMMSE on the true channel, WMMSE on the aged CSI -> this solver): D2D 91.96 -> 94.12,
    AdHoc 91.13 -> 92.99, IC 58.32 -> 56.16 (nothing to recover there, and ``L`` is estimated), MISO
    29.64 -> 35.79, IBC 35.92 -> 47.61, beamforming D2D 72.62 -> 69.51 (README, "Aged CSI in the
    evaluation"). Older gains of the history carry little about the current fading (their correlation
    falls as rho^(2k)) and gains alone do not give an AR predictor, so only the newest observation enters
    the fading term.

    Args:
        rho: slot-to-slot fading correlation in [-1, 1] (needed when ``csi_delay > 0``; 0 for independent
            slots).
        csi_delay: d, slots between the observed and the current channel (integer >= 0).
        csi_error: e in [0, 1], the estimation error.
        large_scale: ``"memory"`` or ``"history"`` (above).
        window: slots of the memory's average (integer >= 1, default 100).
        passes: beamforming: WMMSE passes with the predicted interference as noise, after the first on the
            scaled channel (integer >= 0, default 2); each is one more WMMSE run.
        max_iter, tol, init, warm_floor, device, dtype: the WMMSE's (:class:`~solvers.wmmse.WMMSE`).

    Shapes: as :class:`~solvers.wmmse.WMMSE` (power control and beamforming); a history key in the
    observation is read, never required.
    """

    name = "wmmse_predictive"
    problems = frozenset({"power", "beamforming"})
    #: constructor keyword -> env fact the evaluation harness fills it from (l2o_env.evaluation.spec.env_facts)
    from_env = MappingProxyType({"rho": "fading_correlation", "csi_delay": "csi_delay", "csi_error": "csi_error"})

    def __init__(self, rho: float | None = None, csi_delay: int = 0, csi_error: float = 0.0,
                 large_scale: str = "memory", window: int = 100, passes: int = 2, max_iter: int = 100,
                 tol: float = 1e-3,
                 init: str = "full", warm_floor: float = 0.3, device: Any = "cpu", dtype: Any = torch.float64):
        super().__init__(max_iter=max_iter, tol=tol, init=init, warm_floor=warm_floor, device=device, dtype=dtype)
        who = type(self).__name__
        self.csi_delay = integer(who, "csi_delay", csi_delay, minimum=0)
        self.csi_error = real(who, "csi_error", csi_error, at_least=0.0)
        if self.csi_error > 1.0:
            raise ValueError(f"{who}: csi_error must be in [0, 1], got {csi_error!r}")
        if rho is None:
            if self.csi_delay > 0:
                raise ValueError(f"{who}: csi_delay={self.csi_delay} needs rho, the slot-to-slot fading correlation "
                                 "(the env's fading_correlation; 0 for independent slots); `l2o eval` fills it")
            self.rho = None
        else:
            self.rho = real(who, "rho", rho)
            if abs(self.rho) > 1.0:
                raise ValueError(f"{who}: rho must be in [-1, 1], got {rho!r}")
        self.large_scale = choice(who, "large_scale", large_scale, _LARGE_SCALE)
        self.window = integer(who, "window", window)
        self.passes = integer(who, "passes", passes, minimum=0)
        rho_d = 1.0 if self.csi_delay == 0 else self.rho**self.csi_delay
        #: c, the correlation of the observed and the current (normalised) channel coefficient
        self.correlation = rho_d * math.sqrt(1.0 - self.csi_error**2)
        self._mean: np.ndarray | None = None
        self._seen = 0

    def reset(self) -> None:
        """Forget the observed slots (the large-scale memory) and the WMMSE's warm start."""
        super().reset()
        self._mean = None
        self._seen = 0

    # --- the large scale ---------------------------------------------------------------------------------
    def _remember(self, power: np.ndarray) -> None:
        self._seen += 1
        self._mean += (power - self._mean) / min(self._seen, self.window)

    def _large_scale(self, power: np.ndarray, history: np.ndarray | None) -> np.ndarray:
        """The estimate of L from this slot's observed powers ``(B, ...)`` and the history ``(B, n, ...)``."""
        if self.large_scale == "history":
            return power if history is None else history.mean(axis=1)
        if self._mean is None or self._mean.shape != power.shape:
            slots = [power] if history is None else [history[:, i] for i in range(history.shape[1])]
            self._mean, self._seen = np.zeros_like(power), 0
            for s in slots:
                self._remember(s)
        else:
            self._remember(power)
        return self._mean

    # --- the prediction ----------------------------------------------------------------------------------
    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if self.correlation == 1.0:  # perfect CSI: WMMSE on the observation
            return super()._solve(obs)
        if "channel" in obs:
            return self._solve_channel(obs)
        c2 = self.correlation**2
        gain = np.asarray(obs["gain"], dtype=np.float64)
        history = obs.get("gain_history")
        history = None if history is None else np.asarray(history, dtype=np.float64)
        large = self._large_scale(gain, history)
        return super()._solve({**obs, "gain": c2 * gain + (1.0 - c2) * large})

    def _solve_channel(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        """Beamforming: WMMSE on ``c H_hat``, then ``passes`` times with the predicted interference as noise."""
        c = self.correlation
        channel = np.asarray(obs["channel"], dtype=np.float64)  # (B, K, T, Nr, Nt, 2)
        power = (channel**2).sum(-1).mean(axis=(-2, -1))  # (B, K, T): mean |H|^2 of each link-transmitter pair
        history = obs.get("channel_history")
        if history is not None:
            history = (np.asarray(history, dtype=np.float64) ** 2).sum(-1).mean(axis=(-2, -1))  # (B, n, K, T)
        large = self._large_scale(power, history)
        scaled = {**obs, "channel": math.copysign(max(abs(c), _MIN_SCALE), c) * channel}
        precoders = super()._solve(scaled)
        noise = np.asarray(obs["noise"], dtype=np.float64)
        tx = np.rint(np.asarray(obs["tx_of_link"], dtype=np.float64)).astype(np.intp)  # (B, K)
        rows = np.arange(tx.shape[0])[:, None]
        own_large = np.take_along_axis(large, tx[..., None], axis=-1)[..., 0]  # (B, K): L_(k, t(k))
        for _ in range(self.passes):
            link = (precoders**2).sum(axis=(-3, -2, -1))  # (B, K): ||V_j||^2
            per_tx = np.zeros(large.shape[:1] + large.shape[2:])  # (B, T)
            np.add.at(per_tx, (rows, tx), link)
            interference = (large * per_tx[:, None, :]).sum(-1) - own_large * link  # sum over j != k
            extra = (1.0 - c * c) * np.maximum(interference, 0.0)
            precoders = super()._solve({**scaled, "noise": noise + extra})
        return precoders

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(rho={self.rho}, csi_delay={self.csi_delay}, csi_error={self.csi_error}, "
                f"large_scale={self.large_scale!r}, passes={self.passes}, max_iter={self.max_iter}, tol={self.tol})")
