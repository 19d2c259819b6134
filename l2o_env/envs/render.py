"""Pictures of an env: ``render_mode="rgb_array"`` (an RGB frame) and ``"human"`` (the same frame in a
matplotlib figure), for the single env of every scenario and, as a tuple of frames, the native vector env.

What a frame shows (one network):

- Geometric scenarios (the observation carries ``tx_pos`` / ``rx_pos``: IMAC, AdHoc, D2D, Beamforming-IBC,
  Beamforming-D2D): the layout of the true current slot (the one the next action is scored on; with
  ``csi_delay`` the observed positions are those of ``d`` slots earlier): transmitters (red triangles),
  receivers (blue circles), base stations as squares (the IMAC's receivers, the IBC's transmitters), a
  line from the transmitter of every link to its receiver, and the cells of the IMAC and the IBC (the
  region their users live in, around each base station). The view is the region the model's positions
  never leave (cells, the D2D square, the ad hoc square), fixed, so a movie does not zoom. Each link's line is
  coloured by the power the last action gave it, as a fraction of its transmitter's budget (power control:
  ``p_k / pmax_k``; beamforming: ``||V_k||_F^2 / pmax_t(k)``, after the env's clipping / projection), and
  its width grows with the rate the link got (relative to the best link of that step). Before the first
  step of an episode the links are grey.
- The Gaussian IC and the MISO downlink have no geometry: the frame is the true current channel as a heat
  map (IC: ``gain`` in dB, receiver x transmitter; beamforming: ``sum_r |H[k, t, r, m]|^2`` in dB, link x
  transmit antenna) beside a bar per link: its rate (length) and its power share (colour, the same scale).

The title names the env, the slot of the episode (and the time, with a speed), the CSI knobs that are set
and the sum rate of the last step. Frames are ``(480, 640, 3)`` uint8 for every scenario and step, drawn
with matplotlib's Agg canvas (no pyplot, no global backend change); ``"human"`` shows them with pyplot,
and under a non-interactive backend (Agg: tests, servers) it draws into a pyplot figure without opening a
window or waiting.

Rendering reads the env's state and never its random generator, so an env with a ``render_mode`` gives
exactly the observations and rewards of one without (``tests/test_render.py``). :func:`save_gif` writes a
list of frames as an animated GIF (pillow).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

__all__ = ["RENDER_FPS", "FRAME_SIZE", "Picture", "link_power_share", "save_gif"]

#: frames per second Gymnasium's ``metadata["render_fps"]`` announces (and :func:`save_gif`'s default)
RENDER_FPS = 10
#: (width, height) of every frame in pixels
FRAME_SIZE = (640, 480)
_DPI = 100
_GREY = (0.72, 0.72, 0.72)


def link_power_share(problem: str, feasible: np.ndarray, pmax: np.ndarray, tx_of_link: np.ndarray) -> np.ndarray:
    """The power of every link as a fraction of its transmitter's budget, ``(..., K)``.

    ``feasible``: a feasible action (power: ``(..., K)`` W; beamforming: ``(..., K, Nt, d, 2)``), ``pmax``
    ``(T,)`` the budgets, ``tx_of_link`` ``(K,)`` (``arange(K)`` for power control)."""
    feasible = np.asarray(feasible, dtype=np.float64)
    budget = np.asarray(pmax, dtype=np.float64)[np.asarray(tx_of_link, dtype=np.intp)]
    if problem == "power":
        power = feasible
    else:
        power = np.square(feasible).sum(axis=(-3, -2, -1))
    return np.clip(power / budget, 0.0, 1.0)


def _interactive_backend() -> bool:
    import matplotlib

    backend = str(matplotlib.get_backend()).lower()
    try:
        from matplotlib.backends import BackendFilter, backend_registry

        quiet = set(backend_registry.list_builtin(BackendFilter.NON_INTERACTIVE))
    except ImportError:  # matplotlib < 3.9
        quiet = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}
    return backend not in quiet


class Picture:
    """The frames of the ``batch`` networks of one env configuration (one for the single env).

    The env calls :meth:`reset` when episodes start, :meth:`record` after every step (the feasible action
    and the per-link rates), :meth:`frame` to draw one network and :meth:`show` in ``"human"`` mode;
    :meth:`close` frees the figures. Nothing here touches the env's random generator.
    """

    def __init__(self, config: Any, batch: int = 1, fps: float = RENDER_FPS):
        self.config = config
        self.problem = config.problem
        self.batch = int(batch)
        self.fps = fps
        self.geometric = bool(config.has_geometry)
        self._tx_of_link = np.asarray(config.tx_of_link, dtype=np.intp)
        self._pmax = np.asarray(config.pmax, dtype=np.float64)
        k = config.num_links
        self.share = np.full((self.batch, k), np.nan)
        self.rates = np.full((self.batch, k), np.nan)
        self.steps = np.zeros(self.batch, dtype=np.int64)
        self._limits: list[np.ndarray | None] = [None] * self.batch
        self._cells = _cell_geometry(config.model) if self.geometric else None
        self._region = _region(config.model, self._cells) if self.geometric else None
        self._figure = None
        self._window = None  # (pyplot figure, image) of "human" mode

    # --- state -----------------------------------------------------------------------------------
    def reset(self, index: Any = None) -> None:
        """New episodes for the networks ``index`` (all when None): no action yet, slot 0, new view."""
        rows = range(self.batch) if index is None else np.atleast_1d(np.asarray(index, dtype=np.intp)).tolist()
        for i in rows:
            self.share[i] = np.nan
            self.rates[i] = np.nan
            self.steps[i] = 0
            self._limits[i] = None

    def record(self, feasible: np.ndarray, rates: np.ndarray) -> None:
        """The last step of every network: its feasible action (``(B, ...)``, or one network's without the
        batch axis) and the per-link rates ``(B, K)`` it got."""
        share = link_power_share(self.problem, feasible, self._pmax, self._tx_of_link)
        self.share[:] = share.reshape(self.batch, -1)
        self.rates[:] = np.asarray(rates, dtype=np.float64).reshape(self.batch, -1)
        self.steps += 1

    # --- drawing ---------------------------------------------------------------------------------
    def frame(self, slot: dict[str, np.ndarray], row: int = 0) -> np.ndarray:
        """The RGB frame ``(H, W, 3)`` uint8 of network ``row``; ``slot``: its true current observation
        (``BatchSim.true_observation(row)``: positions, gain or channel, ``pmax`` ...)."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        if self._figure is None:
            w, h = FRAME_SIZE
            self._figure = Figure(figsize=(w / _DPI, h / _DPI), dpi=_DPI)
            FigureCanvasAgg(self._figure)
        fig = self._figure
        fig.clear()
        share, rates = self.share[row], self.rates[row]
        if self.geometric:
            self._draw_layout(fig, slot, share, rates, row)
        else:
            self._draw_heat_map(fig, slot, share, rates)
        fig.suptitle(self._title(row, rates), fontsize=10)
        fig.canvas.draw()
        rgba = np.asarray(fig.canvas.buffer_rgba())
        return np.ascontiguousarray(rgba[..., :3])

    def show(self, frame: np.ndarray) -> None:
        """``"human"`` mode: ``frame`` in a pyplot figure (a window under an interactive backend, paced at
        ``fps``; under Agg the figure is drawn and nothing waits)."""
        import matplotlib.pyplot as plt

        if self._window is None or not plt.fignum_exists(self._window[0].number):
            w, h = FRAME_SIZE
            fig = plt.figure(figsize=(w / _DPI, h / _DPI), dpi=_DPI)
            ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
            ax.set_axis_off()
            self._window = (fig, ax.imshow(frame))
        else:
            self._window[1].set_data(frame)
        fig = self._window[0]
        if _interactive_backend():
            plt.pause(1.0 / self.fps)
        else:
            fig.canvas.draw()

    def close(self) -> None:
        if self._window is not None:
            import matplotlib.pyplot as plt

            plt.close(self._window[0])
            self._window = None
        self._figure = None

    def _title(self, row: int, rates: np.ndarray) -> str:
        cfg = self.config
        t = int(self.steps[row])
        head = f"{cfg.env_id}   slot {t}"
        if cfg.speed is not None:
            head += f" ({t * cfg.slot_duration * 1e3:.0f} ms, {cfg.speed:g} m/s)"
        csi = []
        if cfg.csi_delay:
            csi.append(f"csi_delay={cfg.csi_delay}")
        if cfg.csi_error:
            csi.append(f"csi_error={cfg.csi_error:g}")
        if csi:
            head += "   " + ", ".join(csi)
        tail = "no action yet" if np.isnan(rates).all() else f"sum rate of the last step {np.nansum(rates):.2f} bit/s/Hz"
        return f"{head}\n{tail}"

    def _draw_layout(self, fig, slot, share, rates, row) -> None:
        import matplotlib as mpl
        from matplotlib.collections import LineCollection
        from mpl_toolkits.axes_grid1 import make_axes_locatable

        tx = np.asarray(slot["tx_pos"], dtype=np.float64)
        rx = np.asarray(slot["rx_pos"], dtype=np.float64)
        ax = fig.add_axes((0.09, 0.10, 0.78, 0.76))
        cax = make_axes_locatable(ax).append_axes("right", size="3%", pad=0.12)  # follows the equal-aspect box
        cmap = mpl.colormaps["viridis"]
        if self._cells is not None:
            _draw_cells(ax, self._cells)
        segments = np.stack([tx[self._tx_of_link], rx], axis=1)  # (K, 2 ends, 2)
        acted = not np.isnan(share).all()
        if acted:
            best = np.nanmax(rates) if np.nanmax(rates) > 0 else 1.0
            widths = 0.6 + 3.4 * np.nan_to_num(rates) / best
            lines = LineCollection(segments, colors=cmap(np.nan_to_num(share)), linewidths=widths, zorder=2)
        else:
            lines = LineCollection(segments, colors=[_GREY], linewidths=1.0, linestyles="dashed", zorder=2)
        ax.add_collection(lines)
        tx_label, rx_label = _roles(tx, rx)
        for pts, label, colour, marker in ((tx, tx_label, "tab:red", "^"), (rx, rx_label, "tab:blue", "o")):
            base = label.startswith("base")
            pts = np.unique(pts, axis=0) if base else pts
            ax.scatter(pts[:, 0], pts[:, 1], marker="s" if base else marker, s=110 if base else 26, c=colour,
                       edgecolors="k", linewidths=0.4, zorder=3, label=label)
        lo, hi = self._view(row, np.concatenate([tx, rx]))
        ax.set_xlim(lo[0], hi[0])
        ax.set_ylim(lo[1], hi[1])
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel("x (m)", fontsize=8)
        ax.set_ylabel("y (m)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.0), ncol=2, fontsize=7, frameon=False, borderaxespad=0.2)
        bar = fig.colorbar(mpl.cm.ScalarMappable(mpl.colors.Normalize(0.0, 1.0), cmap), cax=cax)
        bar.set_label("power / transmitter budget (width: rate)", fontsize=8)
        bar.ax.tick_params(labelsize=7)

    def _view(self, row: int, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Axis limits of network ``row``, with a margin: the region every drop and move stays in when the
        model says it (the cells; the D2D square; the ad hoc square widened by the receiver offsets), so a
        movie does not zoom; else the box of the points seen this episode (grown, never shrunk)."""
        if self._region is not None:
            lo, hi = self._region
        else:
            lo, hi = points.min(axis=0), points.max(axis=0)
            seen = self._limits[row]
            if seen is not None:
                lo, hi = np.minimum(lo, seen[0]), np.maximum(hi, seen[1])
            self._limits[row] = np.stack([lo, hi])
        pad = 0.06 * max(float((hi - lo).max()), 1e-9)
        return lo - pad, hi + pad

    def _draw_heat_map(self, fig, slot, share, rates) -> None:
        import matplotlib as mpl

        k = self.config.num_links
        if "gain" in slot:
            power = np.asarray(slot["gain"], dtype=np.float64)
            xlabel, ylabel = "transmitter j", "receiver of link i"
        else:
            ch = np.asarray(slot["channel"], dtype=np.float64)  # (K, T, Nr, Nt, 2)
            power = np.square(ch).sum(axis=(-1, -3)).reshape(k, -1)  # (K, T * Nt)
            xlabel, ylabel = "transmit antenna (transmitter, antenna)", "link k"
        db = 10.0 * np.log10(np.maximum(power, 1e-30))
        from matplotlib.ticker import MaxNLocator

        ax = fig.add_axes((0.09, 0.10, 0.44, 0.75))
        im = ax.imshow(db, cmap="magma", aspect="auto", interpolation="nearest")
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_ylabel(ylabel, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("true channel gain (dB)", fontsize=8)
        bar = fig.colorbar(im, ax=ax, fraction=0.05, pad=0.02)
        bar.ax.tick_params(labelsize=7)
        cmap = mpl.colormaps["viridis"]
        bx = fig.add_axes((0.66, 0.10, 0.22, 0.75))
        links = np.arange(k)
        if np.isnan(share).all():
            bx.barh(links, np.zeros(k), color=_GREY)
            bx.text(0.5, 0.5, "no action yet", transform=bx.transAxes, ha="center", va="center", fontsize=8)
        else:
            bx.barh(links, np.nan_to_num(rates), color=cmap(np.nan_to_num(share)), edgecolor="k", linewidth=0.3)
        bx.set_ylim(k - 0.5, -0.5)
        bx.set_xlabel("rate (bit/s/Hz)", fontsize=8)
        bx.set_ylabel("link", fontsize=8)
        bx.tick_params(labelsize=7)
        bx.yaxis.set_major_locator(MaxNLocator(integer=True))
        bx.set_title("last step", fontsize=8)
        cax = fig.add_axes((0.91, 0.10, 0.02, 0.75))
        pbar = fig.colorbar(mpl.cm.ScalarMappable(mpl.colors.Normalize(0.0, 1.0), cmap), cax=cax)
        pbar.set_label("power / budget", fontsize=8)
        pbar.ax.tick_params(labelsize=7)


def _roles(tx: np.ndarray, rx: np.ndarray) -> tuple[str, str]:
    """Legend labels: base stations are the side that several links share."""
    if len(tx) < len(rx):  # the IBC downlink: T base stations serve K users
        return "base stations (transmit)", "users (receive)"
    if len(np.unique(rx, axis=0)) < len(rx):  # the IMAC uplink: users send to their cell's base station
        return "users (transmit)", "base stations (receive)"
    return "transmitters", "receivers"


def _cell_geometry(model: Any) -> tuple[np.ndarray, str, float, float] | None:
    """``(bs_positions (N, 2), shape, outer radius, inner radius)`` of a cellular model (IMAC, IBC), else None."""
    from l2o_env.channels.imac import IMAC

    # the IBC keeps its drop geometry in an IMAC instance (channels/ibc.py, ``_CellGeometry``)
    cells = model if isinstance(model, IMAC) else getattr(model, "_geometry", None)
    if not isinstance(cells, IMAC):
        return None
    return (np.asarray(cells.bs_positions, dtype=np.float64), cells.cell_shape, float(cells.outer_radius),
            float(cells.min_radius))


def _region(model: Any, cells: Any) -> tuple[np.ndarray, np.ndarray] | None:
    """``(lo, hi)`` corners of the region a model's positions never leave, or None when unknown."""
    if cells is not None:
        bs, radius = cells[0], cells[2]
        return bs.min(axis=0) - radius, bs.max(axis=0) + radius
    side = getattr(model, "side", None)  # D2D (power and beamforming): transmitters and receivers in [0, side]^2
    if side is not None:
        return np.zeros(2), np.full(2, float(side))
    half, spread = getattr(model, "half_side", None), getattr(model, "rx_spread", None)
    if half is not None and spread is not None:  # ad hoc: transmitters in [-half, half]^2, receivers +- spread
        return np.full(2, -float(half + spread)), np.full(2, float(half + spread))
    return None


def _draw_cells(ax, cells) -> None:
    from matplotlib.patches import Circle, RegularPolygon

    bs, shape, outer, inner = cells
    for x, y in bs:
        if shape == "hexagon":  # corners at 30, 90, ... degrees: edges face the neighbouring base stations
            region = RegularPolygon((x, y), numVertices=6, radius=outer, orientation=0.0)
        else:
            region = Circle((x, y), outer)
        region.set(facecolor=(0.93, 0.95, 1.0), edgecolor=(0.55, 0.6, 0.75), linewidth=0.8, zorder=0)
        ax.add_patch(region)
        if inner > 0:
            ax.add_patch(Circle((x, y), inner, facecolor="white", edgecolor=(0.55, 0.6, 0.75), linewidth=0.5,
                                linestyle="dotted", zorder=1))


def save_gif(frames: Sequence[np.ndarray], path: Any, fps: float = RENDER_FPS) -> None:
    """Write RGB frames ``(H, W, 3)`` uint8 (all the same size) as an animated GIF that loops (pillow)."""
    from pathlib import Path

    from PIL import Image

    if not frames:
        raise ValueError("save_gif: no frames to write")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=max(1, round(1000.0 / fps)), loop=0,
                   optimize=False)
