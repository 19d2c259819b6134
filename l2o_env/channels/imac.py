"""Interfering multiple-access channel (IMAC) of Sun et al. 2018, Sec. V-A.

H. Sun, X. Chen, Q. Shi, M. Hong, X. Fu, N. D. Sidiropoulos, "Learning to Optimize: Training Deep Neural
Networks for Interference Management", IEEE Trans. Signal Process. 66(20):5438-5453, 2018,
doi:10.1109/TSP.2018.2866382, arXiv:1705.09412.

``N`` hexagonal cells with one single-antenna BS at each centre and ``K / N`` single-antenna users per
cell (uplink). The receiver of user ``k`` is its own BS, so the ``K`` links share ``N`` distinct
receivers: per-receiver arrays are ``(B, N, K)`` and :meth:`IMAC.gain` expands them to the
``(B, K, K)`` matrix of DESIGN.md (row ``i`` = the BS of user ``i``).

Channel (Sec. V-A): Rayleigh fading with variance ``(200 / d)^3 L`` (``d`` in metres), ``10 log10 L ~
N(0, 8^2)`` (8 dB log-normal shadowing), drawn independently per (user, BS) pair. So

.. math::

    g_{nk} = \\Big(\\frac{200}{d_{nk}}\\Big)^3 L_{nk} |f_{nk}|^2, \\qquad f_{nk} \\sim CN(0, 1).

Geometry, as the authors' code does it (Haoran-S/TSP-DNN ``IMAC_model/Layout.m`` and
``Generate_IMAC_function.m``, https://github.com/Haoran-S/TSP-DNN): ``R = cell_radius`` is half the inter-site distance
(100 m); BS 1 at the origin, BSs 2..7 at ``2R`` at 0, 60, ..., 300 degrees, further BSs on the next
hexagonal rings in the order of ``Layout.m`` (ring by ring, by angle from the first one past -60 deg).

- ``cell_shape="disc"`` (default, the authors' code): users uniform over the AREA of a disc of radius
  ``2R / sqrt(3)`` (the hexagon's corner distance) around their BS, outside ``inner_radius``. This
  reproduces Table II (see ``tests/test_channels.py::test_imac_reproduces_table_ii``).
- ``cell_shape="hexagon"`` (the paper's wording): users uniform over the hexagon of apothem ``R``
  (edges facing the neighbouring BSs), outside ``inner_radius``. Gives ~5 % more sum rate.

With ``inner_radius > 0`` we follow the paper ("uniformly distributed in the area from the inner circle
of radius r to the cell boundary"); the authors' code draws the radius with density ``~ d - r`` instead.

Noise ``sigma^2 = 1`` and ``Pmax = 1`` (the authors' code; the paper states neither).

Density ``d``: the whole layout (inter-site distance, cell radius, inner radius) is scaled by
``1 / sqrt(d)``, so the same ``K`` users occupy ``1/d`` of the area; the path-loss constant 200 m is not
scaled, so denser networks are also stronger (both signal and interference).

Distances are clipped below at :attr:`IMAC.MIN_DISTANCE` = 1 cm: the far-field law ``(200/d)^3`` diverges
at ``d = 0``. A user lands within 1 cm of its BS with probability ``(0.01 / 115.5)^2 ~ 7.5e-9``, so the
effect on any mean is far below the Monte-Carlo error.

Mobility (:meth:`IMAC.move`): users move along their headings and reflect specularly at the boundary
of their OWN cell region (the disc of radius ``2R/sqrt(3)`` or the hexagon, and the inner circle), so a
user never changes cell or serving BS; BSs do not move. Shadowing is fixed per drop; path loss follows
the positions.

Shapes: layout ``tx_pos (B, K, 2)`` users, ``rx_pos (B, K, 2)`` serving BS of each user,
``shadowing (B, N, K)``, ``heading (B, K)``, ``extra["bs_pos"] (B, N, 2)``; fading ``(B, N, K)``
complex128; ``large_scale``/``rx_gain``/``observation_extras()["bs_gain"]`` ``(B, N, K)`` float64;
``gain`` ``(B, K, K)`` float64.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from l2o_env.channels.base import (
    ChannelModel,
    Layout,
    heading_vector,
    pairwise_sq_distance,
)
from l2o_env.validation import MAX_COUNT, integer, real

__all__ = ["IMAC", "hex_grid"]

_SQRT3 = float(np.sqrt(3.0))
# outward unit normals of the hexagon's six edges (edges face the neighbours at 0, 60, ... degrees)
_HEX_NORMALS = np.stack([np.cos(np.arange(6) * np.pi / 3), np.sin(np.arange(6) * np.pi / 3)], axis=-1)


def hex_grid(num_cells: int) -> np.ndarray:
    """Centres ``(num_cells, 2)`` of a hexagonal grid with unit inter-site distance.

    The order is that of the authors' ``Layout.m``: the origin, then ring after ring (hexagonal
    distance 1, 2, ...), each ring by increasing angle starting from the first position past -60
    degrees (ring 1: 0, 60, ... 300 deg; ring 2: -30, 0, 30, ... deg). ``Layout.m`` stops at 37 cells;
    this continues the same rule for any number.
    """
    rings = 0
    while 3 * rings * (rings + 1) + 1 < num_cells:
        rings += 1
    q, r = np.meshgrid(np.arange(-rings, rings + 1), np.arange(-rings, rings + 1), indexing="ij")
    q, r = q.ravel(), r.ravel()
    ring = (np.abs(q) + np.abs(r) + np.abs(q + r)) // 2
    keep = ring <= rings
    q, r, ring = q[keep], r[keep], ring[keep]
    xy = np.stack([q + 0.5 * r, 0.5 * _SQRT3 * r], axis=-1).astype(np.float64)
    angle = np.arctan2(xy[:, 1], xy[:, 0])
    angle = np.where(angle <= -np.pi / 3 + 1e-9, angle + 2 * np.pi, angle)
    order = np.lexsort((np.round(angle, 9), ring))
    return xy[order][:num_cells]


class IMAC(ChannelModel):
    """Multi-cell interfering MAC of Sun et al. 2018 (Sec. V-A), batched.

    Args:
        num_links: K, total number of users (>= 1, a multiple of ``num_cells``).
        num_cells: N, number of cells / BSs (>= 1).
        cell_radius: R in metres, half the inter-site distance (paper: 100 m; Table IV: 100-500 m).
        inner_radius: r in metres, no user closer than this to its BS (Table V); ``0 <= r`` and ``r`` less
            than the cell's inscribed radius (``2R/sqrt(3)`` for the disc, ``R`` for the hexagon).
        cell_shape: ``"disc"`` (authors' code, default) or ``"hexagon"`` (see the module docstring).
        density: area density factor d > 0; the layout is scaled by ``1/sqrt(d)``.
        carrier_frequency: Hz, used only by the env's Doppler (default 2.4 GHz).

    Example:
        >>> import numpy as np
        >>> model = IMAC(num_links=12, num_cells=3)
        >>> rng = np.random.default_rng(0)
        >>> layout = model.sample_layout(rng, 4)
        >>> model.gain(layout, model.sample_fading(rng, 4)).shape
        (4, 12, 12)
    """

    has_geometry = True
    default_noise = 1.0
    default_pmax = 1.0
    #: metres; distances below are clipped (the far-field law diverges at 0)
    MIN_DISTANCE = 0.01
    #: path-loss reference distance and exponent, ``(200 / d)^3`` (Sec. V-A)
    PATHLOSS_REF = 200.0
    #: standard deviation of the log-normal shadowing, dB (Sec. V-A: variance 64)
    SHADOWING_DB = 8.0

    def __init__(
        self,
        num_links: int = 12,
        num_cells: int = 3,
        cell_radius: float = 100.0,
        inner_radius: float = 0.0,
        cell_shape: str = "disc",
        density: float = 1.0,
        carrier_frequency: float = 2.4e9,
    ):
        owner = "IMAC"
        self.num_links = integer(owner, "num_links", num_links, maximum=MAX_COUNT)
        self.num_cells = integer(owner, "num_cells", num_cells, maximum=MAX_COUNT)
        if self.num_links % self.num_cells:
            raise ValueError(
                f"IMAC: num_links={num_links} must be a multiple of num_cells={num_cells} "
                "(every cell has the same number of users)"
            )
        self.cell_radius = real(owner, "cell_radius", cell_radius, above=0.0)
        self.inner_radius = real(owner, "inner_radius", inner_radius, at_least=0.0)
        if cell_shape not in ("disc", "hexagon"):
            raise ValueError(f"IMAC: cell_shape must be 'disc' or 'hexagon', got {cell_shape!r}")
        self.cell_shape = cell_shape
        self.density = real(owner, "density", density, above=0.0)
        self.carrier_frequency = real(owner, "carrier_frequency", carrier_frequency, above=0.0)
        inscribed = 2.0 * self.cell_radius / _SQRT3 if cell_shape == "disc" else self.cell_radius
        if self.inner_radius >= inscribed:
            raise ValueError(
                f"IMAC: inner_radius={inner_radius} m must be < {inscribed:.4g} m, the inscribed radius of a "
                f"{cell_shape} cell with cell_radius={cell_radius} m"
            )

        self.num_rx = self.num_cells
        self.users_per_cell = self.num_links // self.num_cells
        scale = 1.0 / np.sqrt(self.density)
        self.scale = scale
        #: (N, 2) BS positions in metres (density applied)
        self.bs_positions = hex_grid(self.num_cells) * (2.0 * self.cell_radius * scale)
        #: (K,) index of the serving BS of every user (users of cell n are contiguous)
        self.cell_of_user = np.repeat(np.arange(self.num_cells), self.users_per_cell)
        #: outer radius of the user region: the disc radius, or the hexagon's corner distance
        self.outer_radius = 2.0 * self.cell_radius / _SQRT3 * scale
        #: hexagon apothem (only used with cell_shape="hexagon")
        self.apothem = self.cell_radius * scale
        self.min_radius = self.inner_radius * scale

    # --- layout ------------------------------------------------------------------------------
    def _in_cell(self, offset: np.ndarray) -> np.ndarray:
        """Whether user offsets ``(..., 2)`` from their BS lie in the user region (boundaries included)."""
        r2 = offset[..., 0] ** 2 + offset[..., 1] ** 2
        ok = (r2 <= self.outer_radius**2 * (1 + 1e-12)) & (r2 >= self.min_radius**2 * (1 - 1e-12))
        if self.cell_shape == "hexagon":
            ok &= (offset @ _HEX_NORMALS.T).max(axis=-1) <= self.apothem * (1 + 1e-12)
        return ok

    def _sample_offsets(self, rng: np.random.Generator, shape) -> np.ndarray:
        """User offsets from their BS, uniform over the user region. The hexagon is drawn from its
        circumscribed annulus and rejected (acceptance >= 0.82 - pi r^2 / area), a few vector rounds."""

        def annulus(n):
            u = rng.random(n)
            r = np.sqrt(self.min_radius**2 + u * (self.outer_radius**2 - self.min_radius**2))
            t = rng.random(n) * 2.0 * np.pi
            return np.stack([r * np.cos(t), r * np.sin(t)], axis=-1)

        n = int(np.prod(shape))
        out = annulus(n)
        if self.cell_shape == "hexagon":
            todo = np.nonzero(~self._in_cell(out))[0]
            for _ in range(10_000):
                if todo.size == 0:
                    break
                cand = annulus(todo.size)
                ok = self._in_cell(cand)
                out[todo[ok]] = cand[ok]
                todo = todo[~ok]
        return out.reshape(*shape, 2)

    def sample_layout(self, rng: np.random.Generator, batch: int) -> Layout:
        """``batch`` drops: users uniform in their cells, shadowing per (BS, user), uniform headings."""
        batch = integer("IMAC.sample_layout", "batch", batch)
        offsets = self._sample_offsets(rng, (batch, self.num_links))
        serving = np.broadcast_to(self.bs_positions[self.cell_of_user], offsets.shape)
        shadow_db = self.SHADOWING_DB * rng.standard_normal((batch, self.num_cells, self.num_links))
        heading = rng.random((batch, self.num_links)) * 2.0 * np.pi
        return Layout(
            tx_pos=serving + offsets,
            rx_pos=serving.copy(),
            shadowing=np.exp(shadow_db * (np.log(10.0) / 10.0)),
            heading=heading,
            extra={"bs_pos": np.repeat(self.bs_positions[None], batch, axis=0)},
        )

    def large_scale(self, layout: Layout) -> np.ndarray:
        """``(200 / d)^3 L`` for every (BS, user) pair, ``(B, N, K)``."""
        # (200/d)^3 = q sqrt(q) with q = 200^2 / d^2: no power function, one square root
        q = self.PATHLOSS_REF**2 / pairwise_sq_distance(layout.extra["bs_pos"], layout.tx_pos, self.MIN_DISTANCE)
        q *= np.sqrt(q)
        q *= layout.shadowing
        return q

    # --- gains -------------------------------------------------------------------------------
    def gain(self, layout: Layout, fading: np.ndarray) -> np.ndarray:
        """``(B, K, K)``: row ``i`` is the row of the BS serving user ``i`` in :meth:`rx_gain`."""
        return self.rx_gain(layout, fading)[:, self.cell_of_user, :]

    def observation_extras(self, layout: Layout, fading: np.ndarray) -> dict[str, np.ndarray]:
        """``{"bs_gain": (B, N, K)}``: every user's power gain to every BS (the MLP input of Sec. IV)."""
        return {"bs_gain": self.rx_gain(layout, fading)}

    # --- mobility ----------------------------------------------------------------------------
    def move(self, layout: Layout, rng: np.random.Generator, distance) -> Layout:
        """Users move ``distance`` metres (scalar or broadcastable to ``(B, K)``) along their headings,
        reflecting specularly at the boundary of their own cell region; BSs and shadowing stay.

        Exact ray tracing: each bounce finds the first boundary hit (outer circle or hexagon edge,
        inner circle), reflects the direction about the boundary normal and continues with the
        remaining distance.

        Returns a new :class:`Layout` (new user-position and heading arrays); the input is never written,
        and its ``rx_pos`` (the fixed BSs), shadowing and ``extra`` arrays are shared with the result.
        """
        dist = np.broadcast_to(np.asarray(distance, dtype=np.float64), layout.heading.shape)
        if not np.all(np.isfinite(dist)) or np.any(dist < 0):
            raise ValueError(f"IMAC.move: distance must be finite and >= 0 metres, got {distance!r}")
        offset = layout.tx_pos - layout.rx_pos
        shape = offset.shape
        p = offset.reshape(-1, 2).copy()
        u = heading_vector(layout.heading).reshape(-1, 2).copy()
        s = dist.reshape(-1).copy()
        active = np.nonzero(s > 0)[0]
        for _ in range(1000):
            if active.size == 0:
                break
            pa, ua, sa = p[active], u[active], s[active]
            t, normal = self._first_hit(pa, ua)
            hit = t < sa
            step = np.where(hit, t, sa)
            pa = pa + step[:, None] * ua
            un = (ua * normal).sum(-1, keepdims=True)
            ua = np.where(hit[:, None], ua - 2.0 * un * normal, ua)
            p[active], u[active], s[active] = pa, ua, np.where(hit, sa - t, 0.0)
            active = active[hit]
        p = self._clamp(p)
        return replace(
            layout,
            tx_pos=layout.rx_pos + p.reshape(shape),
            heading=np.arctan2(u[:, 1], u[:, 0]).reshape(layout.heading.shape),
            extra=dict(layout.extra),
        )

    def _first_hit(self, p: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Distance along ``u`` from ``p`` (inside the region) to the first boundary, and its unit normal."""
        n = p.shape[0]
        pu = (p * u).sum(-1)
        pp = (p * p).sum(-1)
        t_best = np.full(n, np.inf)
        normal = np.zeros((n, 2))

        def take(t, nrm):
            better = t < t_best
            t_best[better] = t[better]
            normal[better] = nrm[better]

        if self.cell_shape == "disc":
            root = np.sqrt(np.maximum(pu * pu - (pp - self.outer_radius**2), 0.0))
            t = np.maximum(-pu + root, 0.0)
            hitp = p + t[:, None] * u
            take(t, hitp / np.maximum(np.linalg.norm(hitp, axis=-1, keepdims=True), 1e-300))
        else:
            nu = u @ _HEX_NORMALS.T  # (n, 6)
            npos = p @ _HEX_NORMALS.T
            with np.errstate(divide="ignore", invalid="ignore"):
                t_edge = np.where(nu > 1e-15, (self.apothem - npos) / nu, np.inf)
            t_edge = np.maximum(t_edge, 0.0)
            k = t_edge.argmin(axis=-1)
            take(t_edge[np.arange(n), k], _HEX_NORMALS[k])
        if self.min_radius > 0:
            disc = pu * pu - (pp - self.min_radius**2)
            approaching = (pu < 0) & (disc > 0)
            t = np.where(approaching, -pu - np.sqrt(np.maximum(disc, 0.0)), np.inf)
            t = np.maximum(t, 0.0)
            hitp = p + np.where(np.isfinite(t), t, 0.0)[:, None] * u
            take(t, hitp / np.maximum(np.linalg.norm(hitp, axis=-1, keepdims=True), 1e-300))
        return t_best, normal

    def _clamp(self, p: np.ndarray) -> np.ndarray:
        """Project offsets that round-off left a hair outside the region back onto its boundary."""
        r = np.linalg.norm(p, axis=-1, keepdims=True)
        if self.cell_shape == "disc":
            p = np.where(r > self.outer_radius, p * (self.outer_radius / np.maximum(r, 1e-300)), p)
        else:
            excess = np.maximum(p @ _HEX_NORMALS.T - self.apothem, 0.0)
            p = p - excess @ _HEX_NORMALS
        if self.min_radius > 0:
            r = np.linalg.norm(p, axis=-1, keepdims=True)
            p = np.where(r < self.min_radius, p * (self.min_radius / np.maximum(r, 1e-300)), p)
        return p
