"""The contract every channel model follows: a large-scale layout plus small-scale fading, both batched.

A channel state is split in two so that mobility can evolve each part on its own time scale:

- :class:`Layout` (large scale): positions, shadowing and anything else fixed for a network drop. The
  mean power gain of every (receiver-row, transmitter) pair comes from it (:meth:`ChannelModel.large_scale`).
- fading (small scale): complex coefficients ``(B, R, K)``, each CN(0, 1) marginally. Models fold any
  fading power factor (e.g. Rayleigh(1) amplitudes with E|h|^2 = 2) into the large scale, so that Jakes
  correlation (:func:`evolve_fading`) is model-independent.

``R`` is the number of distinct receivers: ``K`` for pairwise models (IC, ad hoc, D2D), the number of
base stations ``N`` for the IMAC (every user of a cell has the same receiver). :meth:`ChannelModel.gain`
expands to the ``(B, K, K)`` matrix of DESIGN.md: ``gain[b, i, j] = |h_ij|^2`` from transmitter ``j`` to
the receiver of link ``i``.

Every method takes an explicit ``np.random.Generator`` and a batch size; nothing uses a global RNG.
Arrays are float64 / complex128 (the env casts its observation to float32).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field, replace

import numpy as np

SPEED_OF_LIGHT = 299_792_458.0  # m/s

__all__ = [
    "Layout",
    "ChannelModel",
    "evolve_fading",
    "jakes_correlation",
    "complex_normal",
    "SPEED_OF_LIGHT",
    "pairwise_sq_distance",
    "reflect_in_box",
    "heading_vector",
]


@dataclass
class Layout:
    """Large-scale state of ``B`` networks.

    Attributes:
        tx_pos: ``(B, K, 2)`` transmitter positions in metres, or ``None`` without geometry.
        rx_pos: ``(B, K, 2)`` position of the receiver of each link (the serving BS for the IMAC), or ``None``.
        shadowing: ``(B, R, K)`` linear log-normal shadowing factors, or ``None`` when the model has none.
        heading: ``(B, K)`` direction of motion in radians (used only with a speed), or ``None``.
        extra: model-specific arrays (e.g. IMAC base-station positions), each with a leading batch axis.
    """

    tx_pos: np.ndarray | None = None
    rx_pos: np.ndarray | None = None
    shadowing: np.ndarray | None = None
    heading: np.ndarray | None = None
    extra: dict = field(default_factory=dict)

    @property
    def batch_size(self) -> int | None:
        for arr in (self.tx_pos, self.rx_pos, self.shadowing):
            if arr is not None:
                return arr.shape[0]
        return None

    def take(self, index) -> "Layout":
        """The sub-batch ``index`` (an int array or slice) of every batched array."""

        def pick(a):
            return None if a is None else a[index]

        return replace(
            self,
            tx_pos=pick(self.tx_pos),
            rx_pos=pick(self.rx_pos),
            shadowing=pick(self.shadowing),
            heading=pick(self.heading),
            extra={k: v[index] for k, v in self.extra.items()},
        )

    def put(self, index, other: "Layout") -> None:
        """Write ``other`` into the sub-batch ``index`` in place (the vector env's per-env reset)."""
        for name in ("tx_pos", "rx_pos", "shadowing", "heading"):
            mine, theirs = getattr(self, name), getattr(other, name)
            if mine is not None and theirs is not None:
                mine[index] = theirs
        for k, v in other.extra.items():
            self.extra[k][index] = v


def complex_normal(rng: np.random.Generator, shape) -> np.ndarray:
    """CN(0, 1) samples (complex128): real and imaginary parts N(0, 1/2)."""
    z = rng.standard_normal((*shape, 2))
    z *= np.sqrt(0.5)
    # (…, 2) float64 pairs reinterpreted as complex128: same numbers, no temporaries
    return z.view(np.complex128)[..., 0]


def jakes_correlation(speed: float, carrier_frequency: float, slot_duration: float) -> float:
    """Slot-to-slot fading correlation of the Jakes model, ``rho = J0(2 pi f_d T)``, ``f_d = v f_c / c``.

    J0 is evaluated from its integral form ``(1/pi) int_0^pi cos(x sin t) dt`` (composite Simpson,
    2001 points: error < 1e-12 for the x < 100 that matter here), so no SciPy dependency is needed.
    """
    x = 2.0 * np.pi * speed * carrier_frequency / SPEED_OF_LIGHT * slot_duration
    if x == 0.0:
        return 1.0  # exactly: a static channel must not drift by the quadrature's rounding (1 + 2e-16 per slot)
    t = np.linspace(0.0, np.pi, 2001)
    f = np.cos(x * np.sin(t))
    h = t[1] - t[0]
    simpson = h / 3.0 * (f[0] + f[-1] + 4.0 * f[1:-1:2].sum() + 2.0 * f[2:-1:2].sum())
    return float(np.clip(simpson / np.pi, -1.0, 1.0))


def evolve_fading(fading: np.ndarray, rng: np.random.Generator, rho: float) -> np.ndarray:
    """First-order Gauss-Markov step ``h_t = rho h_(t-1) + sqrt(1 - rho^2) e_t``, ``e_t ~ CN(0, 1)``.

    Keeps the CN(0, 1) marginal, so the lag-1 correlation of ``|h|^2`` is ``rho^2``.
    """
    if rho == 1.0:
        return fading.copy()
    return rho * fading + np.sqrt(max(0.0, 1.0 - rho * rho)) * complex_normal(rng, fading.shape)


class ChannelModel(ABC):
    """Batched channel model. Subclasses set ``num_links``, ``num_rx`` and the defaults below.

    Attributes:
        num_links: K, the number of links (transmitter/receiver pairs; users in the IMAC).
        num_rx: R, the rows of the per-receiver arrays (K, or N base stations in the IMAC).
        has_geometry: whether layouts carry positions (density and movement apply).
        default_noise: noise power sigma^2 per receiver, watts (or normalised units).
        default_pmax: per-transmitter power budget, watts (or normalised units).
        carrier_frequency: Hz, used for the Doppler of the mobility model.
    """

    num_links: int
    num_rx: int
    has_geometry: bool = False
    default_noise: float = 1.0
    default_pmax: float = 1.0
    carrier_frequency: float = 2.4e9

    # --- large scale -------------------------------------------------------------------------
    @abstractmethod
    def sample_layout(self, rng: np.random.Generator, batch: int) -> Layout:
        """A fresh drop of ``batch`` networks: positions, shadowing, headings."""

    @abstractmethod
    def large_scale(self, layout: Layout) -> np.ndarray:
        """Mean power gains ``(B, R, K)`` (path loss x shadowing x antenna gains x fading power)."""

    def move(self, layout: Layout, rng: np.random.Generator, distance: float) -> Layout:
        """Move every mobile node ``distance`` metres along its heading, reflecting at the boundary.

        Models without geometry return the layout unchanged.
        """
        return layout

    # --- small scale -------------------------------------------------------------------------
    def sample_fading(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """Independent CN(0, 1) coefficients ``(B, R, K)`` complex128."""
        return complex_normal(rng, (batch, self.num_rx, self.num_links))

    # --- combination -------------------------------------------------------------------------
    def rx_gain(self, layout: Layout, fading: np.ndarray) -> np.ndarray:
        """Power gains ``(B, R, K)`` from every transmitter to every distinct receiver."""
        return self.large_scale(layout) * (fading.real**2 + fading.imag**2)

    def gain(self, layout: Layout, fading: np.ndarray) -> np.ndarray:
        """The ``(B, K, K)`` gain matrix of DESIGN.md (row = receiver of link i, column = transmitter j)."""
        return self.rx_gain(layout, fading)

    def observation_extras(self, layout: Layout, fading: np.ndarray) -> dict[str, np.ndarray]:
        """Model-specific observation keys (e.g. IMAC ``bs_gain`` (B, N, K)); positions are added by the env."""
        return {}

    def sample(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """Convenience: ``batch`` independent gain matrices ``(B, K, K)`` (new layout and fading each)."""
        layout = self.sample_layout(rng, batch)
        return self.gain(layout, self.sample_fading(rng, batch))


# --- small geometry / validation helpers shared by the geometric models ------------------------
def pairwise_sq_distance(rx: np.ndarray, tx: np.ndarray, min_distance: float = 0.0) -> np.ndarray:
    """Squared distances ``(B, R, K)`` in m^2 from every transmitter ``tx (B, K, 2)`` to every receiver
    ``rx (B, R, 2)``, clipped below at ``min_distance**2`` (path-loss laws diverge at d -> 0); squared
    because every path loss here is a power of the distance (no square root needed)."""
    dx = rx[:, :, None, 0] - tx[:, None, :, 0]
    dy = rx[:, :, None, 1] - tx[:, None, :, 1]
    d2 = dx * dx
    d2 += dy * dy
    return np.maximum(d2, min_distance * min_distance, out=d2)


def heading_vector(heading: np.ndarray) -> np.ndarray:
    """Unit direction vectors ``(..., 2)`` of headings in radians."""
    return np.stack((np.cos(heading), np.sin(heading)), axis=-1)


def reflect_in_box(pos: np.ndarray, direction: np.ndarray, low, high) -> tuple[np.ndarray, np.ndarray]:
    """Fold free-flight positions back into the box ``[low, high]`` per axis (specular reflection).

    ``pos`` is where a node would be without walls (old position + distance x direction), with the old
    position inside the box; any number of bounces is handled in closed form (the motion is unfolded
    with period ``2 (high - low)``). Each direction component is flipped when its axis bounced an odd
    number of times. An axis of zero width pins the node at ``low``. Shapes broadcast; returns new
    ``(pos, direction)`` arrays.
    """
    low = np.asarray(low, dtype=np.float64)
    high = np.asarray(high, dtype=np.float64)
    width = high - low
    safe = np.where(width > 0, width, 1.0)
    y = pos - low
    bounces = np.floor(y / safe)
    m = np.mod(y, 2.0 * safe)
    folded = np.where(m > safe, 2.0 * safe - m, m)
    odd = np.mod(bounces, 2.0) == 1.0
    new_pos = np.where(width > 0, low + folded, low + 0.0 * y)
    new_dir = np.where(odd & (width > 0), -direction, direction)
    return new_pos, new_dir
