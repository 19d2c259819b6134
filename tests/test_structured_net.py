"""The structured network of Song et al. 2023 (solvers/structured_net.py): shapes, feasibility, the lifting,
the untrained net, equivariance, training, checkpoints."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import solvers
from l2o_env.data import ObservationSampler
from l2o_env.problems import get_problem
from solvers.mrt import MRT
from solvers.structured_net import StructuredNet, StructuredNetConfig, lifting_matrix, paper_widths

BF = get_problem("beamforming")
ENV = "Beamforming-IBC-v0"
#: a small IBC (2 cells x 2 users, Nt = 4, Nr = 2) and a small net, so that tests run in seconds
SMALL = {"users_per_cell": 2, "num_antennas": 4}
NET = {"left_hidden": 32, "precoder_embed": 16, "channel_embed": 16, "init_hidden": 16, "right_hidden": 16,
       "num_layers": 2, "batch_size": 16, "val_size": 32, "val_every": 5}


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here on one torch thread (the conftest fixture)."""


def ibc(batch=8, seed=0, **kw):
    return ObservationSampler(ENV, seed=seed, **{**SMALL, **kw})(batch)


def shaped(obs, **kw) -> StructuredNet:
    """A net built for ``obs``'s shape with random weights (as ``fit`` would build it)."""
    net = StructuredNet(random_init=True, **{**NET, **kw})
    net.adapt_to(obs)
    torch.manual_seed(0)
    net.model = net.build()
    # the residual outputs start at zero; perturb them so that the tests see a net that does something
    with torch.no_grad():
        for p in net.model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


def per_tx_power(obs, v):
    tx = obs["tx_of_link"].astype(int)
    link = (v ** 2).sum(axis=(2, 3, 4))
    return np.stack([(link * (tx == t)).sum(1) for t in range(obs["pmax"].shape[1])], axis=1)


def test_registered_and_defaults():
    assert "structured_net" in solvers.available(problem="beamforming")
    assert "structured_net" not in solvers.available(problem="power")
    c = solvers.make("structured_net").config
    assert (c.num_layers, c.lr, c.lr_final, c.batch_size) == (5, 1e-3, 1e-5, 512)
    w = paper_widths(nt=8, nr=2, k=8)
    assert w["lift_dim"] == 16 and w["left_hidden"] == 2 * 16 * 16 and w["channel_embed"] == 8 * 32


@pytest.mark.parametrize("interference", ["low", "high"])
def test_feasible_full_budget_and_finite(interference):
    obs = ibc(batch=12, interference=interference)
    v = shaped(obs).act_batch(obs)
    assert v.shape == (12, 4, 4, 2, 2) and np.all(np.isfinite(v))
    used = per_tx_power(obs, v)
    assert np.all(used <= obs["pmax"] * (1 + 1e-9))
    np.testing.assert_allclose(used, obs["pmax"], rtol=1e-4)  # every phase normalises to the whole budget
    assert np.all(BF.project(obs, v)[1] == 0)
    one = shaped(obs).act({k: x[0] for k, x in obs.items()})
    np.testing.assert_allclose(one, v[0], rtol=1e-4, atol=1e-7)


def test_untrained_net_is_the_matched_filter_at_full_power():
    """The residual form: every W starts at the identity, so a net fresh from ``fit``'s initialisation is
    the matched filter scaled to each transmitter's budget (MRT), whatever the lifting."""
    obs = ibc(batch=6, seed=3)
    net = StructuredNet(random_init=True, **NET)
    net.adapt_to(obs)
    net.model = net.build()
    np.testing.assert_allclose(net.act_batch(obs), MRT().act_batch(obs), rtol=1e-4, atol=1e-7)


def test_lifting_has_orthonormal_rows_and_keeps_rates():
    gen = torch.Generator().manual_seed(0)
    d = lifting_matrix(torch.randn(16, 4, 2, generator=gen, dtype=torch.float64))
    assert d.shape == (4, 16)
    torch.testing.assert_close(d @ d.mH, torch.eye(4, dtype=d.dtype), atol=1e-12, rtol=0)
    # Theorem A.1 / Corollary A.2: H' V' = (H D) V' = H (D V'), and ||D V'|| <= ||V'||
    h = torch.randn(3, 2, 4, dtype=torch.complex128, generator=gen)
    vl = torch.randn(3, 16, 2, dtype=torch.complex128, generator=gen)
    torch.testing.assert_close((h @ d) @ vl, h @ (d @ vl))
    assert torch.all(torch.linalg.matrix_norm(d @ vl) <= torch.linalg.matrix_norm(vl) + 1e-12)


@pytest.mark.parametrize("channel_terms", [True, False])
def test_equivariant_to_permuting_users_within_a_cell(channel_terms):
    obs = ibc(batch=5, seed=4, users_per_cell=3)
    obs["weight"] = np.random.default_rng(1).uniform(0.5, 1.5, obs["weight"].shape)
    net = shaped(obs, channel_terms=channel_terms)
    perm = np.array([2, 0, 1, 4, 5, 3])  # users of cell 0 are links 0-2, of cell 1 links 3-5
    assert np.all(obs["tx_of_link"][:, perm] == obs["tx_of_link"])
    permuted = {k: (v[:, perm] if k in ("channel", "weight", "noise", "rx_pos") else v) for k, v in obs.items()}
    v, vp = net.act_batch(obs), net.act_batch(permuted)
    np.testing.assert_allclose(vp, v[:, perm], rtol=1e-4, atol=1e-6)
    # and not invariant: the output does depend on which user is which
    assert not np.allclose(vp, v, atol=1e-3)


def test_a_few_training_steps_raise_the_rate_and_keep_the_shape():
    sampler = ObservationSampler(ENV, seed=1, **SMALL)
    net = StructuredNet(**NET)
    hist = net.fit(sampler, steps=15, seed=0, progress=False)
    assert (net.config.num_antennas, net.config.num_rx_antennas, net.config.num_links) == (4, 2, 4)
    assert hist["best_val_ratio"] > hist["val_ratio"][0]  # above the matched filter it starts from
    assert np.mean(hist["loss"][-5:]) < np.mean(hist["loss"][:5])
    with pytest.raises(ValueError, match="Nt = 4.*Nt = 8"):
        net.act_batch(ObservationSampler(ENV, seed=2)(2))
    with pytest.raises(ValueError, match="Nt = 4"):
        net.fit(ObservationSampler(ENV, seed=2), steps=1, progress=False)


def test_save_load_round_trip_and_bad_files(tmp_path):
    obs = ibc(batch=4, seed=5)
    net = shaped(obs)
    net.meta = {"env_id": ENV, "env_kwargs": SMALL}
    path = net.save(tmp_path / "sn.pt")
    back = StructuredNet.load(path)
    np.testing.assert_array_equal(back.act_batch(obs), net.act_batch(obs))
    assert back.config == net.config and back.trained_on == (ENV, SMALL)
    again = solvers.make("structured_net", checkpoint=path)
    np.testing.assert_array_equal(again.act_batch(obs), net.act_batch(obs))
    bad = tmp_path / "bad.pt"
    bad.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        StructuredNet.load(bad)
    with pytest.raises(ValueError, match="holds a 'unfolded_wmmse' model"):
        StructuredNet.load(solvers.make("unfolded_wmmse", random_init=True).save(tmp_path / "u.pt"))


def test_refuses_untrained_unshaped_and_bad_config():
    obs = ibc(batch=2)
    with pytest.raises(ValueError, match="pretrained=True"):
        StructuredNet().act_batch(obs)
    with pytest.raises(ValueError, match="no shape yet"):
        StructuredNet(random_init=True).act_batch(obs)
    with pytest.raises(ValueError, match="num_layers"):
        StructuredNetConfig(num_layers=0)
    with pytest.raises(ValueError, match="channel_terms"):
        StructuredNetConfig(channel_terms="yes")
    with pytest.raises(ValueError, match="lift_dim must be >= num_antennas"):
        StructuredNetConfig(num_antennas=8, lift_dim=4)
    with pytest.raises(ValueError, match="beamforming"):
        StructuredNet(random_init=True).act_batch(ObservationSampler("PowerControl-IC-v0", seed=0)(2))


def test_pretrained_picks_the_checkpoint_of_the_interference_level():
    from solvers.learned import select_pretrained

    assert select_pretrained("structured_net", ENV, {"interference": "low"})["tag"] == "default"
    assert select_pretrained("structured_net", ENV, {"interference": "high"})["tag"] == "small-high"
    for tag in (True, "small-high"):
        net = solvers.make("structured_net", pretrained=tag)
        assert net.is_trained and net.trained_on[0] == ENV and net.meta["command"]


@pytest.mark.slow
@pytest.mark.parametrize("tag, interference, target", [(True, "low", 0.96), ("small-high", "high", 0.94)])
def test_shipped_checkpoints_reach_their_targets_on_fresh_samples(tag, interference, target):
    """Issue targets (Song et al. 2023, Table 1: 98.6 % / 96.9 %): >= 96 % (low) and >= 94 % (high) of WMMSE."""
    obs = ObservationSampler(ENV, seed=12345, interference=interference)(400)
    net = solvers.make("structured_net", pretrained=tag)
    assert net.trained_on == (ENV, {"interference": interference})
    v = net.act_batch(obs)
    assert np.all(per_tx_power(obs, v) <= obs["pmax"] * (1 + 1e-9))
    assert net.ratio_to_wmmse(obs) >= target


def test_channel_terms_are_the_sums_over_receivers():
    """``_ChannelTerms`` (sums once per transmitter) against the sums written out per link."""
    from solvers.structured_net import _ChannelTerms

    gen = torch.Generator().manual_seed(3)
    bsz, k, t, nr, lift, nt = 2, 5, 2, 2, 7, 4
    lifted = torch.randn(bsz, k, t, nr, lift, dtype=torch.complex128, generator=gen)
    tx = torch.tensor([[0, 0, 1, 1, 1], [1, 0, 1, 0, 0]])
    direct = lifted[torch.arange(bsz)[:, None], torch.arange(k), tx]
    q = torch.randn(bsz, k, dtype=torch.float64, generator=gen)
    terms = _ChannelTerms(lifted, direct, tx, nt)
    for b in range(bsz):
        for i in range(k):
            g = lifted[b, :, tx[b, i]]  # (K, Nr, L): every receiver's channel from i's transmitter
            cell = sum(g[j].mH @ g[j] for j in range(k))
            s = torch.diagonal(cell).real.sum() / nt
            torch.testing.assert_close(terms.cell[b, i], cell / s)
            torch.testing.assert_close(terms.own[b, i], direct[b, i].mH @ direct[b, i] / s)
            torch.testing.assert_close(terms.weighted(q)[b, i], sum(q[b, j] * g[j].mH @ g[j] for j in range(k)) / s)


def test_l2o_train_trains_and_eval_loads_it(tmp_path, capsys):
    from l2o_env.cli import main

    ckpt = tmp_path / "sn.pt"
    kw = "users_per_cell=2,num_antennas=4"
    net_kw = ",".join(f"{k}={v}" for k, v in NET.items())
    assert main(["train", "structured_net", "--env", ENV, "--env-kwargs", kw, "--steps", "2", "--solver-kwargs",
                 net_kw, "--out", str(ckpt), "--no-progress"]) == 0
    assert "structured_net on Beamforming-IBC-v0" in capsys.readouterr().out
    net = StructuredNet.load(ckpt)
    assert net.trained_on == (ENV, SMALL) and net.meta["command"].startswith("l2o train structured_net")
    assert main(["eval", "--env", ENV, "--env-kwargs", kw, "--solvers", "structured_net,mrt", "--solver-kwargs",
                 f"structured_net.checkpoint={ckpt}", "--slots", "8", "--no-progress"]) == 0
