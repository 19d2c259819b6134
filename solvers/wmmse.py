"""WMMSE power control (Sun et al. 2018, Fig. 2) and MIMO beamforming (Shi et al. 2011, Algorithm 1), batched,
behind the :class:`~solvers.base.Solver` interface."""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import torch

from l2o_env.validation import choice, integer, real
from solvers.base import Solver
from solvers.wmmse_core import wmmse_run
from solvers.wmmse_mimo_core import (beamforming_tensors, link_power, matched_filter, mimo_wmmse_prepare,
                                     mimo_wmmse_run, num_streams, precoders_to_numpy, scale_to_budget)

__all__ = ["WMMSE", "resolve_device", "resolve_dtype", "out_of_range"]

_INITS = ("full", "warm")


def resolve_device(device: Any, who: str) -> torch.device:
    """``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``, or ``"auto"`` (CUDA when available, else CPU)."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (TypeError, RuntimeError) as exc:
        raise ValueError(f"{who}: device must be 'cpu', 'cuda' or 'cuda:<index>', got {device!r}") from exc
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"{who}: device must be 'cpu' or 'cuda', got {device!r}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{who}: device={device!r} but torch.cuda.is_available() is False; use device='cpu'")
    return dev


def resolve_dtype(dtype: Any, who: str) -> torch.dtype:
    """``torch.float64`` (default everywhere) or ``torch.float32``, also as the strings ``"float64"``/``"float32"``."""
    table = {"float64": torch.float64, "double": torch.float64, "float32": torch.float32, "float": torch.float32,
             torch.float64: torch.float64, torch.float32: torch.float32}
    try:
        return table[dtype]
    except (KeyError, TypeError):
        raise ValueError(f"{who}: dtype must be torch.float64 or torch.float32 (or their names), got {dtype!r}") from None


def out_of_range(who: str, dtype: torch.dtype, obs: Mapping[str, np.ndarray],
                 result: torch.Tensor | None = None) -> ValueError:
    """The error for an observation on which a WMMSE iteration leaves the floating-point range (NaN/inf, or a
    failed factorisation): observations within the float32 range stay inside it (tests/test_fuzz_solvers.py),
    so this is an SNR beyond float32's, which no channel model produces. ``result``: the iterate, to name the
    samples that left the range."""
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        if "channel" in obs:
            ch = np.asarray(obs["channel"])
            tx = np.rint(np.asarray(obs["tx_of_link"])).astype(np.intp)
            budget = np.take_along_axis(np.asarray(obs["pmax"]), tx, axis=-1)  # (B, K) of each link's transmitter
            snr = (ch ** 2).sum(-1).max(axis=(2, 3, 4)) * budget / np.asarray(obs["noise"])
        else:
            snr = np.asarray(obs["gain"]) * np.asarray(obs["pmax"])[:, None, :] / np.asarray(obs["noise"])[..., None]
    where = ""
    if result is not None:
        bad = ~torch.isfinite(torch.view_as_real(result.resolve_conj()) if result.is_complex() else result)
        rows = np.flatnonzero(bad.reshape(bad.shape[0], -1).any(-1).cpu().numpy())
        where = f" of sample(s) {rows[:10].tolist()}"
    return ValueError(
        f"{who}: the WMMSE iteration{where} left the {str(dtype).replace('torch.', '')} range on this "
        f"observation: its SNR (gain x pmax / noise) reaches {float(np.max(snr)):.3g}, beyond what the iteration "
        "can represent (observations within the float32 range, as the envs give, stay inside it)")


class WMMSE(Solver):
    r"""WMMSE (Sun et al. 2018, Fig. 2; Shi et al. 2011, Alg. 1): weighted-MMSE power control and beamforming, batched.

    The WMMSE algorithm of Q. Shi, M. Razaviyayn, Z.-Q. Luo, C. He, "An Iteratively Weighted MMSE
    Approach to Distributed Sum-Utility Maximization for a MIMO Interfering Broadcast Channel", IEEE
    Trans. Signal Process. 59(9):4331-4340, 2011, doi:10.1109/TSP.2011.2147784, in the real-valued scalar
    form of H. Sun, X. Chen, Q. Shi, M. Hong, X. Fu, N. D. Sidiropoulos, "Learning to Optimize: Training
    Deep Neural Networks for Interference Management", IEEE Trans. Signal Process. 66(20):5438-5453,
    2018, doi:10.1109/TSP.2018.2866382, arXiv:1705.09412 (Sec. II-B, Fig. 2). It maximises the weighted
    sum rate, problem (1),

    .. math::

        \max_{0 \le p_k \le P_k} \sum_k \alpha_k \log\Big(1 + \frac{|h_{kk}|^2 p_k}
        {\sum_{j \ne k} |h_{kj}|^2 p_j + \sigma_k^2}\Big)                                    \qquad (1)

    through the equivalent weighted-MSE problem (2)-(3), by block coordinate descent on
    ``(v, u, w)`` with ``p_k = v_k^2`` (Fig. 2, steps 7-9, from ``v^0_k = \sqrt{P_k}``, step 1):

    .. math::

        v_k^t = \Big[\frac{\alpha_k w_k^{t-1} u_k^{t-1} |h_{kk}|}
                {\sum_j \alpha_j w_j^{t-1} (u_j^{t-1})^2 |h_{jk}|^2}\Big]_0^{\sqrt{P_k}}   \qquad \text{(step 7)}

        u_k^t = \frac{|h_{kk}| v_k^t}{\sum_j |h_{kj}|^2 (v_j^t)^2 + \sigma_k^2}          \qquad \text{(step 8)}

        w_k^t = \frac{1}{1 - u_k^t |h_{kk}| v_k^t}                                        \qquad \text{(step 9)}

    Each iteration cannot lower the weighted sum rate (block coordinate descent on (2), and
    ``w_k = 1 + SINR_k`` at every step). The iteration is :func:`solvers.wmmse_core.wmmse_run`, the
    project's one WMMSE; this class validates the observation and converts numpy <-> torch.

    Stopping (per sample, ``B`` samples in one batch, no loop over samples): when the weighted sum rate
    (bit/s/Hz) changes by less than ``tol`` between two iterations, or after ``max_iter``. Defaults are
    the authors' code (1e-3, 100), which later papers use as "WMMSE"; the paper's own rule is
    ``tol=1e-5, max_iter=500`` (both reproduce Sun's Table I closely; benchmarks/RESULTS.md). A finished sample stops changing.

    Warm start (``init="warm"``, for mobility: consecutive slots with correlated channels). The first
    call, and any call after :meth:`reset` or whose batch shape ``(B, K)`` differs from the previous
    one, starts at full power. Otherwise it starts from the previous call's powers, clipped to the new
    ``pmax`` and floored at ``warm_floor * pmax``: a link that WMMSE drove to ``v = 0`` would stay at 0
    forever (``v_k = 0`` gives ``u_k = 0`` and so ``v_k = 0`` again in step 7), so the floor lets every
    link come back on when its channel improves. The floor trades speed for quality: a low floor saves
    the most iterations but loses sum rate (it stays near the previous slot's local optimum); the default
    0.3 still saves iterations over a full-power start without losing sum rate on correlated Gaussian IC
    fading (the measurements: benchmarks/RESULTS.md, "WMMSE speed").

    Args:
        max_iter: iteration cap (default 100; paper 500).
        tol: stopping threshold on the change of the weighted sum rate, bit/s/Hz (default 1e-3; paper
            1e-5). ``0`` runs exactly ``max_iter`` iterations.
        init: ``"full"`` (every call from full power, Fig. 2 step 1) or ``"warm"`` (see above).
        warm_floor: fraction of ``pmax`` below which a warm start is lifted (default 0.3), in (0, 1].
        device: torch device, ``"cpu"`` (default), ``"cuda"`` (an error when CUDA is missing) or ``"auto"``
            (CUDA when available). On the CPU torch uses ``torch.get_num_threads()`` threads.
        dtype: ``torch.float64`` (default) or ``torch.float32``.

    Beamforming (an observation with a ``channel``): the MIMO WMMSE of Shi et al. 2011, Algorithm 1
    (:func:`solvers.wmmse_mimo_core.mimo_wmmse_run`: U-, W- and V-updates, each transmitter's budget met
    through its Lagrange multiplier, found by bisection), with the same stopping rule (``tol`` on the
    change of the weighted sum rate, per sample, ``max_iter``). ``init="full"`` starts from the matched
    filter at full power, ``V_k = a_t H_{k,t(k)}^H`` with one scale per transmitter (Pellaco et al. 2020,
    "Deep unfolding of the weighted MMSE beamforming algorithm", arXiv:2006.08448); ``init="warm"``
    starts from the previous call's precoders, a link below ``warm_floor`` times its transmitter's equal
    share restarting on its matched filter at that share, every transmitter then rescaled to its full
    budget (Algorithm 1 starts at full power). ``d``, the streams per link, is the action's (the env's
    action space; ``Nr`` by default).

    Attributes:
        last_iterations: ``(B,)`` iterations each sample of the last call ran.

    Shapes:
        ``act``: ``gain (K, K)``, ``weight``/``noise``/``pmax`` ``(K,)`` -> powers ``(K,)`` (watts).
        ``act_batch``: the same with a leading ``B`` -> ``(B, K)``.
        Beamforming ``act``: ``channel (K, T, Nr, Nt, 2)``, ``tx_of_link``/``noise``/``weight`` ``(K,)``,
        ``pmax (T,)`` -> precoders ``(K, Nt, d, 2)`` (real, imaginary); ``act_batch`` with a leading ``B``.
    """

    name = "wmmse"
    problems = frozenset({"power", "beamforming"})

    def __init__(self, max_iter: int = 100, tol: float = 1e-3, init: str = "full", warm_floor: float = 0.3,
                 device: Any = "cpu", dtype: Any = torch.float64):
        who = type(self).__name__
        self.max_iter = integer(who, "max_iter", max_iter)
        self.tol = real(who, "tol (bit/s/Hz)", tol, at_least=0.0)
        self.init = choice(who, "init", init, _INITS)
        self.warm_floor = real(who, "warm_floor (a fraction of pmax)", warm_floor, above=0.0)
        if self.warm_floor > 1.0:
            raise ValueError(f"{who}: warm_floor must be a fraction of pmax in (0, 1], got {warm_floor!r}")
        self.device = resolve_device(device, who)
        self.dtype = resolve_dtype(dtype, who)
        self.last_iterations: np.ndarray | None = None
        self._previous: torch.Tensor | None = None
        self._previous_precoders: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the previous slot's powers (precoders): the next call starts at full power."""
        self._previous = None
        self._previous_precoders = None
        self.last_iterations = None

    def _tensors(self, obs: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
        return {k: torch.as_tensor(np.ascontiguousarray(obs[k]), dtype=self.dtype, device=self.device)
                for k in ("gain", "noise", "pmax", "weight")}

    def _initial_v(self, t: dict[str, torch.Tensor]) -> torch.Tensor | None:
        prev = self._previous
        if self.init != "warm" or prev is None or prev.shape != t["pmax"].shape:
            return None  # full power
        p0 = torch.maximum(torch.minimum(prev, t["pmax"]), self.warm_floor * t["pmax"])
        return p0.sqrt()

    def _solve(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        if "channel" in obs:
            return self._solve_beamforming(obs)
        t = self._tensors(obs)
        power, iters = wmmse_run(t["gain"], t["noise"], t["pmax"], t["weight"], self._initial_v(t),
                                 max_iter=self.max_iter, tol=self.tol)
        if not bool(torch.isfinite(power).all()):
            raise self._out_of_range(obs, power)
        self.last_iterations = iters.cpu().numpy()
        if self.init == "warm":
            self._previous = power
        return power.cpu().numpy().astype(np.float64, copy=False)

    def _initial_precoders(self, t: dict[str, torch.Tensor], streams: int) -> torch.Tensor:
        ch = mimo_wmmse_prepare(t["channel"], t["tx_of_link"])
        start = matched_filter(ch, t["pmax"], streams)
        prev = self._previous_precoders
        if self.init != "warm" or prev is None or prev.shape != start.shape:
            return start
        b_idx = torch.arange(start.shape[0], device=start.device)[:, None]
        share = (t["pmax"] / ch.serves.sum(-1).clamp_min(1.0))[b_idx, ch.tx_of_link]  # (B, K) equal shares
        floor = self.warm_floor * share
        norm2 = link_power(start)
        lifted = start * torch.sqrt(floor / norm2.clamp_min(torch.finfo(norm2.dtype).tiny))[..., None, None]
        low = (link_power(prev) < floor)[..., None, None]
        return scale_to_budget(torch.where(low, lifted, prev), ch.serves, ch.tx_of_link, t["pmax"], "common")

    def _solve_beamforming(self, obs: dict[str, np.ndarray]) -> np.ndarray:
        t = beamforming_tensors(obs, self.dtype, self.device)
        try:
            v0 = self._initial_precoders(t, num_streams(obs))
            v, iters = mimo_wmmse_run(t["channel"], t["tx_of_link"], t["noise"], t["pmax"], t["weight"], v0,
                                      max_iter=self.max_iter, tol=self.tol)
        except (torch.linalg.LinAlgError, FloatingPointError) as exc:
            raise self._out_of_range(obs) from exc
        if not bool(torch.isfinite(torch.view_as_real(v.resolve_conj())).all()):
            raise self._out_of_range(obs, v)
        self.last_iterations = iters.cpu().numpy()
        if self.init == "warm":
            self._previous_precoders = v
        return precoders_to_numpy(v)

    def _out_of_range(self, obs: dict[str, np.ndarray], result: torch.Tensor | None = None) -> ValueError:
        return out_of_range(type(self).__name__, self.dtype, obs, result)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(max_iter={self.max_iter}, tol={self.tol}, init={self.init!r}, "
                f"device={str(self.device)!r})")
