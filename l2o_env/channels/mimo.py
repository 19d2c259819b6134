"""The contract of the multi-antenna (beamforming) channel models: layout plus CN(0, 1) fading per antenna.

A beamforming network has ``K`` links (a link = one receiver with its own data streams) and ``T``
transmitters with ``Nt`` antennas each; every receiver has ``Nr`` antennas; link ``k`` is served by
transmitter ``tx_of_link[k]`` (several links may share one: the users of a base station). The channel
from transmitter ``t`` to the receiver of link ``k`` is the ``Nr x Nt`` complex matrix ``H[k, t]``, and
the received signal of link ``k`` is ``y_k = sum_j H[k, tx_of_link[j]] V_j s_j + n_k`` (``H`` multiplies
the precoder ``V_j``, ``Nt x d``; no conjugate transpose).

The split of :mod:`l2o_env.channels.base` carries over: a :class:`~l2o_env.channels.base.Layout` (large
scale: positions, shadowing, headings) and fading ``(B, K, T, Nr, Nt)``, every entry CN(0, 1), so the
Jakes recursion (:func:`~l2o_env.channels.base.evolve_fading`) correlates every antenna pair on its own
and mobility (``move``) and density work as for power control. The channel is
``H = sqrt(large_scale) * fading`` with :meth:`MimoChannelModel.large_scale` broadcast over the antennas
(one mean power gain per (receiver, transmitter) pair, or one per antenna where a model draws it so).

Shapes (``B`` networks): ``large_scale`` ``(B, K, T, 1, 1)`` or ``(B, K, T, Nr, Nt)``; fading and
``channel`` ``(B, K, T, Nr, Nt)`` complex128; ``positions`` ``(B, T, 2)`` and ``(B, K, 2)`` metres;
``channel_noise`` ``(B, K)`` watts.
"""

from __future__ import annotations

import numpy as np

from l2o_env.channels.base import ChannelModel, Layout, complex_normal

__all__ = ["MimoChannelModel"]


class MimoChannelModel(ChannelModel):
    """Batched multi-antenna channel model (the beamforming family). Subclasses set the attributes.

    Attributes:
        num_links: K, the links (receivers).
        num_tx: T, the transmitters.
        num_tx_antennas: Nt, antennas per transmitter.
        num_rx_antennas: Nr, antennas per receiver.
        num_streams: d, the columns of each precoder; always ``Nr`` (one per receive antenna, as
            Song et al.'s ``V in C^(Nt x Nr)``; fewer streams are zero columns, with the same rate).
        tx_of_link: ``(K,)`` intp, the transmitter of every link.
        default_noise: noise power per receiver (W), unless :attr:`noise_from_channel`.
        default_pmax: total power budget per transmitter (W): ``sum_{k: t(k) = t} ||V_k||_F^2 <= pmax_t``.
        noise_from_channel: True when the default noise follows the channel of every slot
            (:meth:`channel_noise`, the SNR rule of the IBC); an explicit ``noise=`` overrides it.
        pmax_knobs, noise_knobs: constructor keywords that set the default budget / noise, so they
            clash with an explicit ``pmax=`` / ``noise=`` of the env.
    """

    num_tx: int
    num_tx_antennas: int
    num_rx_antennas: int
    tx_of_link: np.ndarray
    noise_from_channel: bool = False
    pmax_knobs: tuple[str, ...] = ()
    noise_knobs: tuple[str, ...] = ()

    @property
    def num_streams(self) -> int:
        return self.num_rx_antennas

    def _set_links(self, tx_of_link: np.ndarray, num_tx: int) -> None:
        self.tx_of_link = np.asarray(tx_of_link, dtype=np.intp)
        self.tx_of_link.flags.writeable = False
        self.num_links = int(self.tx_of_link.size)
        self.num_rx = self.num_links  # one receiver per link
        self.num_tx = int(num_tx)

    # --- small scale -------------------------------------------------------------------------
    def fading_shape(self) -> tuple[int, int, int, int]:
        """``(K, T, Nr, Nt)``: one CN(0, 1) coefficient per (link, transmitter, antenna pair)."""
        return (self.num_links, self.num_tx, self.num_rx_antennas, self.num_tx_antennas)

    def sample_fading(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """Independent CN(0, 1) coefficients ``(B, K, T, Nr, Nt)`` complex128."""
        return complex_normal(rng, (batch, *self.fading_shape()))

    # --- combination -------------------------------------------------------------------------
    def channel(self, layout: Layout, fading: np.ndarray) -> np.ndarray:
        """The channel ``(B, K, T, Nr, Nt)`` complex128: ``sqrt(large_scale) * fading``."""
        return np.sqrt(self.large_scale(layout)) * fading

    def positions(self, layout: Layout) -> tuple[np.ndarray, np.ndarray] | None:
        """``(tx_pos (B, T, 2), rx_pos (B, K, 2))`` in metres, or None without geometry."""
        if not self.has_geometry:
            return None
        return layout.tx_pos, layout.rx_pos

    def channel_noise(self, channel: np.ndarray) -> np.ndarray:
        """Noise powers ``(B, K)`` (W) that follow the slot's channel; only when :attr:`noise_from_channel`."""
        raise NotImplementedError(f"{type(self).__name__} has a fixed noise power (default_noise)")

    def gain(self, layout: Layout, fading: np.ndarray) -> np.ndarray:
        raise TypeError(f"{type(self).__name__} is a multi-antenna model: it has a channel(), not a power-gain matrix")

    def sample(self, rng: np.random.Generator, batch: int) -> np.ndarray:
        """Convenience: ``batch`` independent channels ``(B, K, T, Nr, Nt)`` (new layout and fading each)."""
        layout = self.sample_layout(rng, batch)
        return self.channel(layout, self.sample_fading(rng, batch))
