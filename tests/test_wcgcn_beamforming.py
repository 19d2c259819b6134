"""WCGCN for beamforming (solvers/wcgcn.py with problem="beamforming", solvers/wcgcn_beamforming.py): the
Sec. V-C net of Shen et al. 2021, its contract (shapes, feasibility, equivariance), the family switch,
checkpoints, training and the shipped ``wcgcn-bf.pt``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import solvers
from l2o_env.data import ObservationSampler
from l2o_env.problems import get_problem
from solvers.learned import reference_wsr, select_pretrained, to_torch
from solvers.wcgcn import WCGCN
from solvers.wcgcn_beamforming import BeamformingConv, beta, link_amplitude

BF = get_problem("beamforming")


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here on one torch thread (the conftest fixture)."""


def d2d_bf(batch=3, k=12, seed=0, **kw):
    return ObservationSampler("Beamforming-D2D-v0", seed=seed, num_links=k, **kw)(batch)


def hand_obs(batch=2, k=3, t=3, nt=2, seed=0, tx_of_link=None, pmax=1.0, positions=False):
    """A hand-built batched MISO observation: CN(0, g) channels with random strengths g."""
    rng = np.random.default_rng(seed)
    scale = np.sqrt(rng.uniform(0.1, 100.0, (batch, k, t, 1, 1, 1)) / 2)
    channel = rng.normal(size=(batch, k, t, 1, nt, 2)) * scale
    tx = np.arange(k) if tx_of_link is None else np.asarray(tx_of_link)
    obs = {"channel": channel, "tx_of_link": np.broadcast_to(tx, (batch, k)).astype(float),
           "weight": rng.uniform(0.2, 1.0, (batch, k)), "noise": np.ones((batch, k)),
           "pmax": np.full((batch, t), float(pmax))}
    if positions:
        obs["tx_pos"] = rng.uniform(0, 100, (batch, t, 2))
        obs["rx_pos"] = rng.uniform(0, 100, (batch, k, 2))
    return obs


def bf_net(**kw):
    return WCGCN(problem="beamforming", num_antennas=kw.pop("num_antennas", 2), random_init=True, **kw)


def transmitter_power(obs, v):
    p = (v ** 2).sum(axis=(-1, -2, -3))  # (B, K)
    tx = obs["tx_of_link"].astype(int)
    out = np.zeros(obs["pmax"].shape)
    for b in range(p.shape[0]):
        np.add.at(out[b], tx[b], p[b])
    return out


# --- the family switch ---------------------------------------------------------------------------
def test_one_class_two_families():
    assert WCGCN.problems == frozenset({"power", "beamforming"})
    assert "wcgcn" in solvers.available(problem="beamforming") and "wcgcn" in solvers.available(problem="power")
    assert WCGCN().problems == frozenset({"power"}) and WCGCN().widths == (32, 16)
    net = solvers.make("wcgcn", problem="beamforming", num_antennas=2)
    assert net.problems == frozenset({"beamforming"}) and net.widths == (64, 32)
    conv = net.model.conv  # paper: MLP1 {6 Nt, 64, 64}, MLP2 {64 + 4 Nt, 32, 2 Nt} (module docstring: ours)
    assert conv.mlp1[0].in_features == 6 * 2 + 2 and conv.mlp1[-2].out_features == 64
    assert conv.mlp2[0].in_features == 64 + 2 * 2 + 2 and conv.mlp2[-1].out_features == 2 * 2
    with pytest.raises(ValueError, match="problem"):
        WCGCN(problem="beamformin")
    with pytest.raises(ValueError, match="num_antennas"):
        WCGCN(num_antennas=2)  # power control has one antenna


def test_power_defaults_unchanged():
    net = WCGCN(pretrained=True)  # a shipped power checkpoint (its config predates the family fields)
    assert net.config.problem == "power" and net.problems == frozenset({"power"})
    obs = ObservationSampler("PowerControl-D2D-v0", seed=3)(4)
    assert net.act_batch(obs).shape == (4, 50)


# --- contract ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [3, 50])
def test_shapes_and_feasibility(k):
    obs = d2d_bf(batch=2, k=k)
    net = bf_net()
    v = net.act_batch(obs)
    assert v.shape == (2, k, 2, 1, 2)
    assert np.all(transmitter_power(obs, v) <= obs["pmax"] * (1 + 1e-9))
    assert np.all(BF.project(obs, v)[1] == 0)  # nothing for the problem's projection to change
    one = net.act({key: x[0] for key, x in obs.items()})
    np.testing.assert_allclose(one, v[0], rtol=1e-5, atol=1e-7)


def test_feasible_with_shared_transmitters_and_other_budgets():
    obs = hand_obs(batch=3, k=4, t=2, tx_of_link=[0, 0, 1, 1], pmax=2.5)  # no positions: all-pairs graph
    v = bf_net().act_batch(obs)
    assert v.shape == (3, 4, 2, 1, 2)
    assert np.all(transmitter_power(obs, v) <= 2.5 * (1 + 1e-9))
    amp = link_amplitude(to_torch(obs, dtype=torch.float64))
    np.testing.assert_allclose(amp.numpy(), np.sqrt(2.5 / 2))  # each link's cap: an equal share


def test_layers_and_beta():
    obs = to_torch(hand_obs(k=5, t=5, positions=True))
    net = bf_net()
    layers = net.forward_layers(obs)
    assert len(layers) == 3
    torch.testing.assert_close(layers[-1], net.forward(obs))
    y = torch.tensor([[3.0, 4.0], [0.3, 0.4]])
    torch.testing.assert_close(beta(y), torch.tensor([[0.6, 0.8], [0.3, 0.4]]))


def test_permutation_equivariance():
    obs = d2d_bf(batch=2, k=10, seed=5)
    net = bf_net()
    perm = np.random.default_rng(1).permutation(10)
    permuted = {key: x[:, perm] for key, x in obs.items()}  # links (and their transmitters, T = K)
    permuted["channel"] = permuted["channel"][:, :, perm]
    permuted["tx_of_link"] = obs["tx_of_link"]  # link k is still served by transmitter k
    np.testing.assert_allclose(net.act_batch(permuted), net.act_batch(obs)[:, perm], rtol=1e-5, atol=1e-7)


def test_chunked_inference_matches_one_piece():
    obs = d2d_bf(batch=9, k=20)
    net = bf_net()
    whole = net.act_batch(obs)
    t = {key: torch.as_tensor(x) for key, x in obs.items()}
    edges = net._graph({key: x[:1] for key, x in t.items()})[0].shape[1]
    net.infer_edges = 3 * edges
    assert 1 < net._inference_chunk(t) < 9
    np.testing.assert_allclose(net.act_batch(obs), whole, rtol=1e-6, atol=1e-9)


def test_segment_max_matches_scatter_max():
    torch.manual_seed(0)
    conv = BeamformingConv(6, 4, 8, 4, 2)
    x, e = torch.randn(7, 6), torch.randn(12, 4)
    edge_index = torch.tensor([[1, 2, 3, 0, 4, 5, 6, 0, 1, 2, 3, 4], [0, 0, 0, 1, 1, 1, 1, 3, 3, 5, 5, 5]])
    fast = conv(x, edge_index, e)  # sorted targets: the segment max
    shuffled = torch.randperm(12)
    slow = conv(x, edge_index[:, shuffled], e[shuffled])  # unsorted: PyG's scatter max
    torch.testing.assert_close(fast, slow)


def test_bad_inputs_raise():
    ibc = ObservationSampler("Beamforming-IBC-v0", seed=0)(1)  # Nr = 2
    with pytest.raises(ValueError, match="single-antenna receivers"):
        WCGCN(problem="beamforming", num_antennas=8, random_init=True).act_batch(ibc)
    obs = d2d_bf(batch=1, k=4)
    with pytest.raises(ValueError, match="tx_pos"):
        bf_net().act_batch({key: x for key, x in obs.items() if key != "rx_pos"})
    with pytest.raises(ValueError, match="channel"):
        bf_net().act_batch(ObservationSampler("PowerControl-D2D-v0", seed=0, num_links=4)(1))


# --- persistence and training -----------------------------------------------------------------------
def test_save_load_round_trip(tmp_path):
    obs = d2d_bf()
    net = bf_net(hidden1=16)
    net.model.set_normalisation(torch.tensor([4.0, 5.0, 6.0]), torch.tensor([0.0, 1.0, 3.0]))
    net.meta["note"] = "x"
    back = WCGCN.load(net.save(tmp_path / "bf.pt"))
    assert back.config == net.config and back.problems == frozenset({"beamforming"}) and back.meta["note"] == "x"
    np.testing.assert_array_equal(back.act_batch(obs), net.act_batch(obs))
    again = WCGCN(checkpoint=tmp_path / "bf.pt")  # a power-configured instance becomes a beamforming one
    assert again.problems == frozenset({"beamforming"})
    np.testing.assert_array_equal(again.act_batch(obs), net.act_batch(obs))


def test_fit_adapts_a_fresh_model_and_a_few_steps_raise_the_sum_rate():
    sampler = ObservationSampler("Beamforming-D2D-v0", seed=0, num_links=10, area_side=300.0)
    test = ObservationSampler("Beamforming-D2D-v0", seed=9, num_links=10, area_side=300.0)(128)
    net = WCGCN(hidden1=16, hidden2=8, batch_size=16, val_size=8, val_every=20, lr=1e-2, lr_final=1e-2)
    assert net.problems == frozenset({"power"})
    net.fit(sampler, steps=0, seed=0, progress=False)  # adapts, initialises, measures the normalisation
    assert net.config.problem == "beamforming" and net.config.num_antennas == 2
    assert net.problems == frozenset({"beamforming"})
    before = BF.weighted_sum_rate(test, net.act_batch(test)).mean()
    hist = net.fit(sampler, steps=40, seed=0, progress=False)
    after = BF.weighted_sum_rate(test, net.act_batch(test)).mean()
    assert after > before + 2.0  # bit/s/Hz; measured 18.9 -> 25.7 with this seed
    assert len(hist["loss"]) == 40 and net.meta["env_id"] == "Beamforming-D2D-v0" and net.meta["steps"] == 40
    assert net.meta["val_size"] == 8
    with pytest.raises(ValueError, match="Fit a fresh WCGCN"):
        net.fit(ObservationSampler("PowerControl-D2D-v0", seed=0, num_links=10), steps=1, progress=False)


def test_ratio_to_wmmse_uses_the_mimo_wmmse():
    obs = d2d_bf(batch=4, k=6, seed=2)
    ref = BF.weighted_sum_rate(obs, solvers.make("wmmse").act_batch(obs)).mean()
    assert reference_wsr(obs) == pytest.approx(ref, rel=1e-12)
    net = bf_net()
    mine = BF.weighted_sum_rate(obs, net.act_batch(obs)).mean()
    assert net.ratio_to_wmmse(obs) == pytest.approx(mine / ref, rel=1e-12)
    assert net.ratio_to_wmmse(obs, reference=2 * ref) == pytest.approx(mine / ref / 2, rel=1e-12)


# --- the shipped checkpoint -------------------------------------------------------------------------
def test_shipped_checkpoint_is_a_beamforming_net_and_picked_on_its_env():
    net = WCGCN(pretrained="bf")
    assert net.config.problem == "beamforming" and net.config.num_antennas == 2
    assert net.trained_on[0] == "Beamforming-D2D-v0"
    assert net.meta["command"].startswith("python examples/train_wcgcn.py --env-id Beamforming-D2D-v0")
    entry = select_pretrained("wcgcn", "Beamforming-D2D-v0", {"num_links": 50})
    assert entry["tag"] == "bf" and entry["pretrained"] == "bf"
    assert select_pretrained("wcgcn", "PowerControl-D2D-v0", {"num_links": 50})["tag"] == "default"
    obs = d2d_bf(batch=2, k=50, seed=4)
    assert net.act_batch(obs).shape == (2, 50, 2, 1, 2)


def test_pretrained_true_on_the_env_through_the_harness():
    from l2o_env.evaluation import evaluate

    res = evaluate(["wcgcn", "max_power"], "Beamforming-D2D-v0", slots=2, seed=0, reference="max_power",
                   solver_kwargs={"wcgcn": {"pretrained": True}})
    row = res.row("wcgcn")
    assert np.isfinite(row["mean_wsr"]) and "pretrained=True -> 'bf'" in row["note"]


@pytest.mark.slow
def test_shipped_checkpoint_reaches_95_percent_of_wmmse():
    net = WCGCN(pretrained="bf")
    obs = ObservationSampler("Beamforming-D2D-v0", seed=12345)(500)
    assert net.ratio_to_wmmse(obs) >= 0.95
