r"""WCGCN for beamforming (Shen et al. 2021, Sec. V-C): the net behind ``WCGCN(problem="beamforming")``.

Y. Shen, Y. Shi, J. Zhang, K. B. Letaief, "Graph Neural Networks for Scalable Radio Resource Management:
Architecture Design and Theoretical Analysis", IEEE J. Sel. Areas Commun. 39(1):101-115, 2021,
doi:10.1109/JSAC.2020.3036965, arXiv:2007.07632: the K-user MISO interference channel of Sec. II-C, the
layer eq. (11), the beamforming setting of Sec. V-C (complex numbers as two reals, MLP1 {6 Nt, 64, 64},
MLP2 {64 + 4 Nt, 32, 2 Nt}, ``beta(x) = x / max(||x||_2, 1)``, 3 layers sharing weights, max aggregation,
unsupervised).

The solver class is :class:`solvers.wcgcn.WCGCN` (one class; ``Config.problem`` chooses the family); this
module holds the beamforming layer (:class:`BeamformingConv`, the power layer with a vector output), the
net and its features. The graph is the power net's (:func:`solvers.wcgcn.build_graph`: edge ``j -> i`` when
transmitter ``j`` is within ``edge_threshold`` of receiver ``i`` or the other way round; the strongest
interferers without positions), from each link's transmitter and receiver positions and the channel
strengths ``||H_{i, t(j)}||^2``.

Notation: ``Nr = 1`` (the paper's network; ``Nr > 1`` is refused), so ``H_{i, t}`` is a row of ``Nt`` complex
numbers and link ``j``'s signal at receiver ``i`` is ``h^T v_j`` with ``h = H_{i, t(j)}`` (no conjugate, the
problem's convention). Every channel of receiver ``i`` is divided by ``sigma_i`` and multiplied by the
amplitude cap of the link it carries, ``sqrt(pmax_t / n_t)`` (``n_t`` links share transmitter ``t``; 1 in
the D2D network), so ``||h||^2`` is the SNR or INR at full power and the noise is 1.

Features, in every link's own frame (our choice; the authors' code feeds the raw channel entries,
standardised). A link's frame is a unitary ``Q_i`` whose first column is its matched filter
``conj(h_ii) / ||h_ii||`` (:func:`frames`); the net's beamformer ``y_i`` lives in it (``v_i = Q_i y_i``), and
a channel ``g`` seen by link ``i``'s beamformer reads ``Q_i^T g`` there. In its own frame the direct channel
is ``(||h_ii||, 0, ..., 0)``: one number, the SNR. A cross channel enters through its strength
``log10 ||h||^2`` (standardised like the power net's log gains) and its direction with the common phase
removed (:func:`canonical`: first entry real and >= 0, ``2 Nt - 1`` reals), since ``|h^T y|`` does not
depend on it; likewise every beamformer is rotated to a real first entry (:func:`real_first`), as a link's
rate does not depend on its precoder's common phase. With raw entries, steering away from a neighbour
means multiplying complex numbers, which ReLU MLPs learn slowly; in this form it is a linear map of the
features (benchmarks/RESULTS.md, "WCGCN for beamforming (issue 12)", compares the encodings).

- node ``i``: ``x_i = [y_i, w_i, a_i]`` (``2 Nt + 2`` numbers): the beamformer in its frame (real and
  imaginary parts per antenna; before the first layer ``e_1``, the matched filter at full power, WMMSE's
  start), the weight, the standardised ``log10`` SNR ``a_i`` (the direct channel in its frame);
- edge ``j -> i``: ``e_ji`` (``4 Nt`` numbers): ``h_{j -> i} = H_{i, t(j)}`` in the frame of ``j`` (what ``j``'s
  beamformer does to ``i``) and ``h_{i -> j} = H_{j, t(i)}`` in the frame of ``i`` (what ``i``'s beamformer does
  to ``j``: the leakage WMMSE's V-update weighs), each as its canonical direction and standardised strength.

Layer (eq. 11, weights shared by the ``L = 3`` layers, max aggregation):

.. math::

    y_i \leftarrow \beta\Big(\rho\Big(\mathrm{MLP_2}\big(x_i, \max_{j \in \mathcal N(i)}
        \mathrm{MLP_1}(x_j, e_{ji})\big)\Big)\Big), \qquad \beta(y) = \frac{y}{\max(\lVert y \rVert_2, 1)}

with ``rho`` the common-phase rotation. MLP1 is ``{6 Nt + 2, 64, 64}`` (the paper's ``6 Nt`` plus the weight
and the SNR of the neighbour; the paper's node feature ``Z(k, :) = [h_kk, w_k, sigma_k^2]`` lists both, its
widths count the channel entries only), MLP2 ``{64 + 2 Nt + 2, 32, 2 Nt}`` (the paper's ``64 + 4 Nt`` holds
the direct channel as ``2 Nt`` reals; in the link's frame it is the one SNR number). The precoder of link
``k`` is ``V_k = sqrt(pmax_t / n_t) Q_k y_k^{(L)}``: within its cap, so every transmitter is within its budget
(in the D2D network the paper's ``||v_k||^2 <= Pmax``).
"""

from __future__ import annotations

from typing import Mapping

import torch
from torch import nn

from solvers.wcgcn import StandardisedGNN, WCGCNConv, _mlp, build_graph

__all__ = ["BeamformingConv", "WCGCNBeamformingNet", "beamforming_graph", "beamforming_features", "beta", "canonical",
           "frames", "real_first", "link_amplitude", "precoders_from_fractions"]


def beta(y: torch.Tensor) -> torch.Tensor:
    """``y / max(||y||_2, 1)`` per row: the paper's output map onto the unit ball (Sec. V-C)."""
    return y / torch.linalg.vector_norm(y, dim=-1, keepdim=True).clamp_min(1.0)


class BeamformingConv(WCGCNConv):
    r"""One WCGCN beamforming layer (eq. 11 of Shen et al. 2021), before the output map: :class:`WCGCNConv`
    with a vector output (MLP2 ends in ``out_dim = 2 Nt`` units) and a segment max.

    .. math::
        y_i = \mathrm{MLP_2}\big(x_i, \max_{j \in \mathcal N(i)} \mathrm{MLP_1}(x_j, e_{ji})\big)

    Args:
        node_dim (int): node state width ``F`` (``2 Nt + 2``).
        edge_dim (int): edge feature width ``D`` (``4 Nt``).
        hidden1 (int): MLP1 widths ``{F + D, hidden1, hidden1}`` (paper 64).
        hidden2 (int): MLP2 widths ``{F + hidden1, hidden2, out_dim}`` (paper 32).
        out_dim (int): ``2 Nt`` (>= 2).

    Shapes: x ``(|V|, F)``, edge_index ``(2, |E|)`` (row 0 source ``j``, row 1 target ``i``), edge_attr
    ``(|E|, D)`` -> ``(|V|, out_dim)``. A node without neighbours aggregates zeros.
    """

    def __init__(self, node_dim: int, edge_dim: int, hidden1: int = 64, hidden2: int = 32, out_dim: int = 4):
        super().__init__(node_dim, edge_dim, hidden1, hidden2)
        self.mlp2 = _mlp([node_dim + hidden1, hidden2, out_dim], last_activation=False)
        self.reset_parameters()

    def aggregate(self, inputs: torch.Tensor, index: torch.Tensor, ptr=None,
                  dim_size: int | None = None) -> torch.Tensor:
        # build_graph sorts the edges by target: a segment max, whose backward costs less than the scatter max's
        # (the messages are ReLU outputs, >= 0, so a node without neighbours gets 0, as with PyG's max)
        if index.numel() and dim_size is not None and bool((index[1:] >= index[:-1]).all()):
            lengths = torch.bincount(index, minlength=dim_size)
            return torch.segment_reduce(inputs, "max", lengths=lengths, unsafe=True, initial=0.0)
        return super().aggregate(inputs, index, ptr=ptr, dim_size=dim_size)


class WCGCNBeamformingNet(StandardisedGNN):
    """``num_layers`` applications of one shared :class:`BeamformingConv`, each followed by the common-phase
    rotation and ``beta``, in every link's own frame (module docstring).

    Holds the standardisation of the log channel strengths (``feat_mean``/``feat_std`` buffers: direct
    SNR, then the INR used by both edge directions), set once from training data by :meth:`set_normalisation`.
    """

    def __init__(self, num_antennas: int = 2, hidden1: int = 64, hidden2: int = 32, num_layers: int = 3):
        nt = num_antennas
        node = 2 * nt + 2  # [y (2 Nt), w, SNR]
        super().__init__(BeamformingConv(node, 4 * nt, hidden1, hidden2, 2 * nt), num_layers)
        self.num_antennas = nt

    def forward(self, direct_db: torch.Tensor, weight: torch.Tensor, edge_index: torch.Tensor, edge_in: torch.Tensor,
                edge_out: torch.Tensor, all_layers: bool = False):
        """Features of :func:`beamforming_features` -> beamformers ``y`` ``(|V|, 2 Nt)`` in the unit ball, each in
        its link's frame, after the last layer, or (``all_layers=True``) the list of them after each layer.

        direct_db, weight ``(|V|,)``; edge_in, edge_out ``(|E|, Nt)`` complex: the cross channels ``h_{j -> i}``
        in the frame of ``j`` and ``h_{i -> j}`` in the frame of ``i`` (of edge ``j -> i``).
        """
        mean, std = self.feat_mean, self.feat_std
        dtype = mean.dtype
        a = ((direct_db.to(dtype) - mean[0]) / std[0])[:, None]
        # (the edge channels may be complex128, beyond the net's range: reduced to bounded features first)
        dir_in, db_in = (x.to(dtype) for x in canonical(edge_in))
        dir_out, db_out = (x.to(dtype) for x in canonical(edge_out))
        e = torch.cat([dir_in, (db_in[:, None] - mean[1]) / std[1], dir_out, (db_out[:, None] - mean[1]) / std[1]],
                      dim=-1)
        y = torch.zeros(a.shape[0], 2 * self.num_antennas, dtype=a.dtype, device=a.device)
        y[:, 0] = 1.0  # the first axis of every frame: the matched filter at full power
        w = weight[:, None]
        layers = []
        for _ in range(self.num_layers):
            y = beta(real_first(self.conv(torch.cat([y, w, a], dim=-1), edge_index, e)))
            if all_layers:
                layers.append(y)
        return layers if all_layers else y


def canonical(h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Complex channel vectors ``(..., Nt)`` -> ``(direction, log10 ||h||^2)``: the direction ``h / ||h||``
    times the common phase that makes its first entry real and >= 0, as ``2 Nt - 1`` reals (that first
    entry, then the real and imaginary parts of the others), and the log strength (floored at -30). The
    common phase of a channel does not change ``|h^T y|``, so it is left out."""
    m2 = h.abs().square().sum(-1)
    first = h[..., 0]
    phase = torch.where(first.abs() > 0, first.conj() / first.abs().clamp_min(1e-30), torch.ones_like(first))
    c = h * (phase / m2.sqrt().clamp_min(1e-30))[..., None]
    direction = torch.cat([c[..., :1].real, torch.view_as_real(c[..., 1:]).flatten(-2)], dim=-1)
    return direction, torch.log10(m2.clamp_min(1e-30))


def real_first(y: torch.Tensor) -> torch.Tensor:
    """Beamformers ``(N, 2 Nt)`` (real, imaginary per antenna) times the common phase that makes their first
    entry real and >= 0: a link's rate does not depend on the common phase of its precoder, and the
    channels (:func:`canonical`) follow the same convention."""
    yc = torch.view_as_complex(y.reshape(y.shape[0], -1, 2).contiguous())
    first = yc[:, :1]
    mag = first.abs()
    rot = torch.where(mag > 1e-12, first.conj() / mag.clamp_min(1e-12), torch.ones_like(first))
    return torch.view_as_real(yc * rot).reshape(y.shape)


def frames(direct: torch.Tensor) -> torch.Tensor:
    """Unitary ``Q (N, Nt, Nt)`` whose first column is the matched filter ``conj(h) / ||h||`` of each direct
    channel ``h`` (complex ``(N, Nt)``): a Householder reflection times a phase. A beamformer ``y`` in the
    frame is ``v = Q y``; a channel ``g`` acting as ``g^T v`` reads ``(Q^T g)^T y`` in it."""
    nt = direct.shape[-1]
    q1 = direct.conj() / direct.abs().square().sum(-1).sqrt().clamp_min(1e-30)[..., None]
    first = q1[..., 0]
    phase = torch.where(first.abs() > 0, first / first.abs().clamp_min(1e-30), torch.ones_like(first))
    eye = torch.eye(nt, dtype=direct.dtype, device=direct.device)
    w = phase[..., None] * eye[0] - q1
    ww = w.abs().square().sum(-1)
    house = eye - 2 * (w[..., :, None] * w.conj()[..., None, :]) / ww.clamp_min(1e-30)[..., None, None]
    house = torch.where((ww > 1e-20)[..., None, None], house, eye)
    return phase[..., None, None] * house


def link_amplitude(obs: Mapping[str, torch.Tensor]) -> torch.Tensor:
    """``sqrt(pmax_t / n_t)`` of every link ``(B, K)``: its transmitter's budget shared equally by the ``n_t``
    links of that transmitter (``sqrt(pmax)`` when every transmitter serves one link)."""
    tx = obs["tx_of_link"].long()
    pmax = obs["pmax"]
    count = torch.zeros_like(pmax).scatter_add_(-1, tx, torch.ones_like(tx, dtype=pmax.dtype))
    return (pmax / count.clamp_min(1.0)).gather(-1, tx).sqrt()


def _link_channels(obs: Mapping[str, torch.Tensor], who: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The channel ``(B, K, T, Nt, 2)`` of single-antenna receivers divided by each receiver's ``sigma`` (the
    links' amplitudes, :func:`link_amplitude`, are applied per link by the callers), and the transmitter map
    ``(B, K)`` as integers; a ValueError for ``Nr > 1``."""
    ch = obs["channel"]
    if ch.ndim != 6 or ch.shape[3] != 1:
        raise ValueError(f"{who}: WCGCN beamforming needs single-antenna receivers (channel (B, K, T, 1, Nt, 2), the "
                         f"paper's MISO network); got channel of shape {tuple(ch.shape)}")
    # in float64: a float32 channel over the root of a float32 noise overflows float32 (1e19 / 1e-22)
    return ch[:, :, :, 0].double() / obs["noise"].double().sqrt()[:, :, None, None, None], obs["tx_of_link"].long()


def beamforming_graph(obs: Mapping[str, torch.Tensor], *, edge_threshold: float, max_neighbors: int,
                      who: str = "WCGCN"):
    """:func:`solvers.wcgcn.build_graph` of a batched beamforming observation: the strength of ``j -> i`` is
    ``||H_{i, t(j)}||^2``; positions (when observed) are each link's transmitter's (``tx_pos[t(j)]``) and its
    receiver's. Returns ``(edge_index, b, i, j)``."""
    ch, tx = _link_channels(obs, who)
    bsz, k, t = ch.shape[:3]
    per_tx = (ch * ch).sum((-1, -2))  # (B, K, T)
    strength = per_tx.gather(-1, tx[:, None, :].expand(bsz, k, k))  # (B, K, K): [b, i, j] = ||H_{i, t(j)}||^2
    txp, rxp = obs.get("tx_pos"), obs.get("rx_pos")
    if (txp is None) != (rxp is None):
        raise ValueError(f"{who}: obs must carry both 'tx_pos' and 'rx_pos' or neither")
    if txp is not None:
        if txp.shape != (bsz, t, 2) or rxp.shape != (bsz, k, 2):
            raise ValueError(f"{who}: obs['tx_pos'] and obs['rx_pos'] must have shapes {(bsz, t, 2)} and "
                             f"{(bsz, k, 2)}, got {tuple(txp.shape)} and {tuple(rxp.shape)}")
        txp = txp.gather(1, tx[..., None].expand(bsz, k, 2))  # each link's transmitter position
    return build_graph(strength, tx_pos=txp, rx_pos=rxp, edge_threshold=edge_threshold, max_neighbors=max_neighbors)


def beamforming_features(obs: Mapping[str, torch.Tensor], *, edge_threshold: float, max_neighbors: int,
                         who: str = "WCGCN"):
    """Graph, frames and features of a batched beamforming observation (before standardisation).

    Returns ``(frames (B K, Nt, Nt), direct_db (B K,), edge_index (2, E), edge_in (E, Nt), edge_out (E, Nt))``:
    every link's frame (:func:`frames`), ``log10`` of its SNR at full power, and per edge ``j -> i`` the
    cross channels ``h_{j -> i} = H_{i, t(j)}`` in the frame of ``j`` and ``h_{i -> j} = H_{j, t(i)}`` in the
    frame of ``i`` (complex; channels divided by the receiver's ``sigma`` and multiplied by the link's
    :func:`link_amplitude`, so ``||h||^2`` is an SNR or INR at full power).

    Computed in float64 (SNRs of float32 observations overflow float32: a channel of 1e10 over a noise of
    1e-45 W); the frames and ``direct_db`` come back in the observation's dtype, the edge channels in
    complex128 (:func:`canonical` reduces them to a direction and a log strength in float64 before the net,
    :class:`WCGCNBeamformingNet`, casts those to its own dtype).
    """
    ch, tx = _link_channels(obs, who)
    bsz, k, t, nt, _ = ch.shape
    amp = link_amplitude({key: obs[key].double() if key == "pmax" else obs[key] for key in ("pmax", "tx_of_link")})
    edge_index, b, i, j = beamforming_graph(obs, edge_threshold=edge_threshold, max_neighbors=max_neighbors, who=who)
    cplx = torch.view_as_complex(ch.contiguous())  # (B, K, T, Nt)
    ids = torch.arange(k, device=ch.device)
    bb = torch.arange(bsz, device=ch.device)[:, None]
    direct = (cplx[bb, ids, tx] * amp[..., None]).reshape(bsz * k, nt)  # H_{i, t(i)}
    q = frames(direct)
    direct_db = torch.log10(direct.abs().square().sum(-1).clamp_min(1e-30))
    h_in = cplx[b, i, tx[b, j]] * amp[b, j][:, None]  # H_{i, t(j)}: j's signal at i
    h_out = cplx[b, j, tx[b, i]] * amp[b, i][:, None]  # H_{j, t(i)}: i's signal at j
    src, dst = edge_index
    edge_in = (q[src].transpose(-1, -2) @ h_in[..., None])[..., 0]
    edge_out = (q[dst].transpose(-1, -2) @ h_out[..., None])[..., 0]
    dtype = obs["channel"].dtype
    return q.to(torch.promote_types(dtype, torch.complex64)), direct_db.to(dtype), edge_index, edge_in, edge_out


def precoders_from_fractions(obs: Mapping[str, torch.Tensor], q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Beamformers ``y`` in the unit ball ``(B K, 2 Nt)``, each in its link's frame ``q`` -> precoders
    ``(B, K, Nt, 1, 2)`` (sqrt W): ``sqrt(pmax_t / n_t) Q y``."""
    bsz, k = obs["tx_of_link"].shape
    nt = y.shape[-1] // 2
    v = (q @ torch.view_as_complex(y.reshape(-1, nt, 2).contiguous())[..., None])[..., 0]
    return torch.view_as_real(v).reshape(bsz, k, nt, 1, 2) * link_amplitude(obs)[..., None, None, None]
