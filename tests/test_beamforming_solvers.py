"""Beamforming solvers: MIMO WMMSE (solvers/wmmse_mimo_core.py) and the classical precoders.

Observations are built by hand (CN(0, 1) channels, the layout of ``l2o_env.problems.beamforming``) and,
where a beamforming scenario is registered, drawn from its env. Rates come from the problem
(``l2o_env.rates.mimo_link_rates``, the one home of the formula).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import solvers
from l2o_env.problems import get_problem
from solvers.wmmse_core import wmmse_run
from solvers.wmmse_mimo_core import (_bisect, mimo_uw_update, mimo_v_update, mimo_wmmse_layer, mimo_wmmse_prepare,
                                     mimo_wmmse_run, transmitter_power)

BF = get_problem("beamforming")
PRECODERS = {"wmmse": {}, "truncated_wmmse": {}, "mrt": {}, "zf": {}, "rzf": {}, "equal_power": {},
             "max_power": {}, "random_power": {"seed": 0}}


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread (small batched matrices gain nothing from threads on a shared 2-core machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def network(b: int, k: int, t: int, nr: int, nt: int, *, seed: int = 0, snr_db: float = 10.0,
            weighted: bool = False) -> dict[str, np.ndarray]:
    """``b`` networks, ``k`` links spread over ``t`` transmitters (contiguous), CN(0, 1) channels, noise 1,
    every transmitter's budget ``10^(snr/10)``; weights 1 or U[0, 1]."""
    rng = np.random.default_rng(seed)
    return {
        "channel": rng.standard_normal((b, k, t, nr, nt, 2)) / np.sqrt(2.0),
        "tx_of_link": np.broadcast_to((np.arange(k) * t // k).astype(float), (b, k)).copy(),
        "weight": rng.uniform(0.0, 1.0, (b, k)) if weighted else np.ones((b, k)),
        "noise": np.ones((b, k)),
        "pmax": np.full((b, t), 10.0 ** (snr_db / 10.0)),
    }


def miso(b: int, users: int = 4, antennas: int = 4, *, seed: int = 0, snr_db: float = 10.0):
    """One transmitter with ``antennas`` antennas and ``users`` single-antenna users (Pellaco et al. 2020)."""
    return network(b, users, 1, 1, antennas, seed=seed, snr_db=snr_db)


NETWORKS = {
    "MISO 4x4": lambda: miso(6),
    "MISO 2 users 4 antennas": lambda: miso(6, users=2),
    "IBC 2 cells x 2 users, 2x4": lambda: network(5, 4, 2, 2, 4, seed=1, weighted=True),
    "IBC 2 cells x 2 users, 2x8": lambda: network(5, 4, 2, 2, 8, seed=2),
    "interference channel 3 links 2x2": lambda: network(5, 3, 3, 2, 2, seed=3, snr_db=20.0),
}


def complex_precoders(action: np.ndarray) -> np.ndarray:
    return action[..., 0] + 1j * action[..., 1]


def transmitter_powers(obs, action) -> np.ndarray:
    """``(B, T)`` power each transmitter spends."""
    per_link = (action ** 2).sum(axis=(-1, -2, -3))
    tx = obs["tx_of_link"].astype(int)
    return np.stack([(per_link * (tx == t)).sum(-1) for t in range(obs["pmax"].shape[-1])], axis=-1)


def wsr(obs, action) -> np.ndarray:
    return BF.weighted_sum_rate(obs, action)


def tensors(obs):
    ch = torch.as_tensor(obs["channel"])
    return (torch.complex(ch[..., 0], ch[..., 1]), torch.as_tensor(obs["tx_of_link"]).long(),
            torch.as_tensor(obs["noise"]), torch.as_tensor(obs["pmax"]), torch.as_tensor(obs["weight"]))


# --- every solver --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(PRECODERS))
@pytest.mark.parametrize("net", sorted(NETWORKS))
def test_every_solver_is_feasible_per_transmitter(name, net):
    obs = NETWORKS[net]()
    action = solvers.make(name, **PRECODERS[name]).act_batch(obs)
    assert action.shape == BF.action_shape(obs) and action.dtype == np.float64
    assert np.all(np.isfinite(action))
    used = transmitter_powers(obs, action)
    assert np.all(used <= obs["pmax"])
    projected, changed = BF.project(obs, action)
    np.testing.assert_array_equal(projected, action)  # nothing to project
    assert not changed.any()
    if "wmmse" not in name:  # the others spend the whole budget (WMMSE may stop short of it: mu = 0)
        np.testing.assert_allclose(used, obs["pmax"], rtol=1e-10)


@pytest.mark.parametrize("name", sorted(PRECODERS))
def test_act_equals_act_batch_on_one_sample(name):
    obs = network(1, 4, 2, 2, 4, seed=4)
    one = {k: v[0] for k, v in obs.items()}
    first, again = solvers.make(name, **PRECODERS[name]), solvers.make(name, **PRECODERS[name])
    np.testing.assert_allclose(first.act(one), again.act_batch(obs)[0], rtol=1e-10, atol=1e-12)


def test_registry_lists_the_beamforming_solvers():
    names = set(solvers.available(problem="beamforming"))
    assert set(PRECODERS) <= names
    assert {"wmmse", "truncated_wmmse", "max_power", "random_power"} <= set(solvers.available(problem="power"))
    assert not {"mrt", "zf", "rzf", "equal_power"} & set(solvers.available(problem="power"))


# --- WMMSE ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("net", sorted(NETWORKS))
def test_wmmse_never_lowers_the_weighted_sum_rate(net):
    obs = NETWORKS[net]()
    _, iters, hist = mimo_wmmse_run(*tensors(obs), max_iter=60, tol=0.0, history=True)
    steps = torch.diff(hist, dim=0)
    assert bool((steps >= -1e-9 * hist[1:].abs()).all()), float(steps.min())
    assert bool((iters == 60).all())


def test_wmmse_history_is_the_problems_rate():
    """Line 7's sum of weighted ``log2 det W`` is the weighted sum rate of ``l2o_env.rates``."""
    obs = network(4, 4, 2, 2, 4, seed=5, weighted=True)
    channel, tx, noise, pmax, weight = tensors(obs)
    v, _, hist = mimo_wmmse_run(channel, tx, noise, pmax, weight, max_iter=7, tol=0.0, history=True)
    action = torch.view_as_real(v).numpy()
    np.testing.assert_allclose(hist[-1].numpy(), wsr(obs, action), rtol=1e-10)
    _, _, rate = mimo_uw_update(mimo_wmmse_prepare(channel, tx), noise, v)
    np.testing.assert_allclose(rate.numpy(), BF.rates(obs, action), rtol=1e-10, atol=1e-12)


def test_one_user_one_antenna_each_side_is_full_power():
    obs = network(50, 1, 1, 1, 1, seed=6)
    obs["pmax"] = np.random.default_rng(6).uniform(0.1, 10.0, (50, 1))
    action = solvers.make("wmmse").act_batch(obs)
    np.testing.assert_allclose(transmitter_powers(obs, action), obs["pmax"], rtol=1e-10)


def test_single_antenna_links_are_the_scalar_wmmse():
    """Nr = Nt = 1, one transmitter per link: Algorithm 1 is the scalar WMMSE of power control."""
    obs = network(8, 5, 5, 1, 1, seed=7, weighted=True)
    channel, tx, noise, pmax, weight = tensors(obs)
    v, _ = mimo_wmmse_run(channel, tx, noise, pmax, weight, max_iter=30, tol=0.0)
    gain = (channel[..., 0, 0].abs() ** 2)  # (B, K, T = K): gain[b, i, j] = |h_ij|^2
    power, _ = wmmse_run(gain, noise, pmax, weight, max_iter=30, tol=0.0)
    np.testing.assert_allclose((v.abs() ** 2)[..., 0, 0].numpy(), power.numpy(), rtol=1e-8, atol=1e-12)


def test_batched_wmmse_equals_a_per_sample_loop():
    obs = network(6, 4, 2, 2, 4, seed=8, weighted=True)
    solver = solvers.make("wmmse")
    batched = solver.act_batch(obs)
    batch_iters = solver.last_iterations.copy()
    for b in range(6):
        np.testing.assert_allclose(solver.act({k: v[b] for k, v in obs.items()}), batched[b], rtol=1e-9, atol=1e-12)
        assert solver.last_iterations[0] == batch_iters[b]


def test_wmmse_stops_per_sample_and_max_iter_caps():
    obs = miso(20, seed=9)
    solver = solvers.make("wmmse", tol=1e-3)
    solver.act_batch(obs)
    assert solver.last_iterations.min() < solver.last_iterations.max() <= 100
    capped = solvers.make("wmmse", max_iter=3)
    capped.act_batch(obs)
    assert capped.last_iterations.max() == 3
    truncated = solvers.make("truncated_wmmse", iterations=2)
    truncated.act_batch(obs)
    assert (truncated.last_iterations == 2).all()


def test_warm_start_needs_fewer_iterations_on_the_same_channel():
    obs = miso(10, seed=10, snr_db=20.0)
    warm = solvers.make("wmmse", init="warm")
    first = warm.act_batch(obs)
    cold_iters = warm.last_iterations.copy()
    again = warm.act_batch(obs)
    assert warm.last_iterations.sum() < cold_iters.sum()
    assert np.all(wsr(obs, again) >= wsr(obs, first) - 1e-9)
    warm.reset()
    warm.act_batch(obs)
    np.testing.assert_array_equal(warm.last_iterations, cold_iters)


@pytest.mark.parametrize("snr_db", [5.0, 10.0, 20.0])
def test_wmmse_beats_the_classical_precoders_on_average_miso(snr_db):
    """Pellaco et al. 2020's setting: one transmitter, M = 4 antennas, N = 4 single-antenna users."""
    obs = miso(300, seed=11 + int(snr_db), snr_db=snr_db)
    ours = wsr(obs, solvers.make("wmmse").act_batch(obs)).mean()
    for name in ("mrt", "zf", "rzf", "equal_power"):
        assert ours > wsr(obs, solvers.make(name).act_batch(obs)).mean(), name


# --- the V-update: bisection and gradient ----------------------------------------------------------------------
def test_bisection_meets_the_budget_or_leaves_mu_at_zero():
    lam = torch.tensor([[[0.0, 0.5, 2.0]], [[1.0, 1.0, 3.0]]], dtype=torch.float64)
    phi = torch.tensor([[[0.0, 1.0, 4.0]], [[0.1, 0.1, 0.1]]], dtype=torch.float64)
    pmax = torch.tensor([[1.0], [10.0]], dtype=torch.float64)
    mu, active = _bisect(lam, phi, pmax, 1e-12)
    assert active.tolist() == [[True], [False]] and mu[1, 0] == 0.0  # sum phi / lam^2 = 0.21 <= 10
    spent = (phi[0, 0] / (lam[0, 0] + mu[0, 0]) ** 2).sum()
    assert spent <= 1.0 and float(spent) == pytest.approx(1.0, rel=1e-10)


def test_layer_meets_each_transmitters_budget_exactly():
    obs = network(5, 4, 2, 2, 4, seed=12, snr_db=20.0)
    channel, tx, noise, pmax, weight = tensors(obs)
    ch = mimo_wmmse_prepare(channel, tx)
    v, _ = mimo_wmmse_run(channel, tx, noise, pmax, weight, max_iter=2, tol=0.0)
    v_new = mimo_wmmse_layer(channel, tx, noise, pmax, weight, v, prepared=ch)
    used = transmitter_power(ch.serves, v_new)
    assert bool((used <= pmax * (1 + 1e-12)).all())
    np.testing.assert_allclose(used.numpy(), pmax.numpy(), rtol=1e-9)


@pytest.mark.parametrize("users,antennas", [(4, 4), (2, 4)])  # (2, 4): A_t of rank 2 < Nt, repeated zero eigenvalues
def test_layer_gradient_matches_finite_differences(users, antennas):
    obs = network(2, users, 1, 1, antennas, seed=13, snr_db=10.0)
    channel, tx, noise, pmax, weight = tensors(obs)
    with torch.no_grad():
        v0, _ = mimo_wmmse_run(channel, tx, noise, pmax, weight, max_iter=1, tol=0.0)
    direction = torch.randn(channel.shape, dtype=channel.dtype, generator=torch.Generator().manual_seed(0))
    pdir = torch.rand(pmax.shape, dtype=pmax.dtype, generator=torch.Generator().manual_seed(1))

    def objective(eps):
        v = mimo_wmmse_layer(channel + eps * direction, tx, noise, pmax * (1 + eps * pdir), weight, v0)
        u, w, rate = mimo_uw_update(mimo_wmmse_prepare(channel + eps * direction, tx), noise, v)
        return (weight * rate).sum() + (v.real ** 2 - v.imag).sum()  # a rate and a term that sees V itself

    eps = torch.zeros((), dtype=torch.float64, requires_grad=True)
    value = objective(eps)
    (grad,) = torch.autograd.grad(value, eps)
    h = 1e-6
    with torch.no_grad():
        plus, minus = (objective(torch.tensor(x, dtype=torch.float64)) for x in (h, -h))
        numeric = (plus - minus) / (2 * h)
    assert torch.isfinite(grad)
    assert float(grad) == pytest.approx(float(numeric), rel=1e-4, abs=1e-6)


def test_v_update_gradient_with_mu_zero_and_a_singular_a():
    """Receivers 30x the MMSE ones: the unconstrained update is within the budget (mu = 0) and A_t has rank
    2 < Nt = 4, so V is the pseudo-inverse solution, whose range turns with the channel."""
    obs = network(2, 2, 1, 1, 4, seed=14)
    channel, tx, noise, pmax, weight = tensors(obs)
    with torch.no_grad():
        v0, _ = mimo_wmmse_run(channel, tx, noise, pmax, weight, max_iter=1, tol=0.0)
    direction = torch.randn(channel.shape, dtype=channel.dtype, generator=torch.Generator().manual_seed(2))

    def update(eps):
        ch = mimo_wmmse_prepare(channel + eps * direction, tx)
        u, w, _ = mimo_uw_update(ch, noise, v0)
        return ch, mimo_v_update(ch, pmax, weight, 30.0 * u, w)

    ch, v = update(torch.zeros((), dtype=torch.float64))
    assert bool((transmitter_power(ch.serves, v) < 0.5 * pmax).all())  # mu = 0 for every sample

    def objective(eps):
        v = update(eps)[1]
        return (v.real ** 3 + v.imag * v.real).sum()

    eps = torch.zeros((), dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(objective(eps), eps)
    h = 1e-6
    with torch.no_grad():
        plus, minus = (objective(torch.tensor(x, dtype=torch.float64)) for x in (h, -h))
    assert float(grad) == pytest.approx(float((plus - minus) / (2 * h)), rel=1e-4, abs=1e-8)


# --- classical precoders -----------------------------------------------------------------------------------
def test_mrt_is_optimal_for_one_miso_user():
    obs = miso(40, users=1, antennas=4, seed=14, snr_db=10.0)
    h = complex_precoders(obs["channel"])[:, 0, 0, 0, :]  # (B, Nt)
    closed_form = np.log2(1.0 + obs["pmax"][:, 0] * (np.abs(h) ** 2).sum(-1) / obs["noise"][:, 0])
    for name in ("mrt", "equal_power", "max_power", "rzf", "zf", "wmmse"):
        np.testing.assert_allclose(wsr(obs, solvers.make(name).act_batch(obs)), closed_form, rtol=1e-9, err_msg=name)


@pytest.mark.parametrize("k,t,nr,nt", [(4, 1, 1, 4), (3, 1, 1, 5), (2, 1, 2, 4), (4, 2, 2, 8), (4, 2, 1, 4)])
def test_zf_nulls_the_interference(k, t, nr, nt):
    obs = network(5, k, t, nr, nt, seed=15)
    action = solvers.make("zf", scope="network").act_batch(obs)
    h = complex_precoders(obs["channel"])  # (B, K, T, Nr, Nt)
    v = complex_precoders(action)  # (B, K, Nt, d)
    tx = obs["tx_of_link"].astype(int)[0]
    for j in range(k):  # receiver
        for i in range(k):  # precoder
            leak = h[:, j, tx[i]] @ v[:, i]
            if i != j:
                assert np.abs(leak).max() < 1e-9 * np.sqrt(obs["pmax"].max())
    if t == 1:  # one transmitter: the cell and the network are the same
        np.testing.assert_allclose(solvers.make("zf").act_batch(obs), action, atol=1e-12)


def test_zf_cell_scope_nulls_only_its_own_links():
    obs = network(4, 4, 2, 2, 4, seed=16)  # 2 links of 2 streams per transmitter: (2 - 1) * 2 + 2 = 4 antennas
    action = solvers.make("zf").act_batch(obs)
    h, v = complex_precoders(obs["channel"]), complex_precoders(action)
    assert np.abs(h[:, 1, 0] @ v[:, 0]).max() < 1e-9 and np.abs(h[:, 3, 1] @ v[:, 2]).max() < 1e-9
    assert np.abs(h[:, 2, 0] @ v[:, 0]).max() > 1e-3  # another transmitter's receiver: not nulled


def test_zf_refuses_streams_that_do_not_fit_with_the_dimensions():
    obs = network(2, 4, 2, 2, 4, seed=17)  # network scope: 3 other receivers x 2 antennas + 2 streams > 4
    with pytest.raises(ValueError, match=r"Nr=2 .*Nt=4.*m=3.*K=4.*scope='network'"):
        solvers.make("zf", scope="network").act_batch(obs)
    with pytest.raises(ValueError, match="d=1 streams.*Nt=3"):
        solvers.make("zf").act_batch(miso(2, users=4, antennas=3))
    with pytest.raises(ValueError, match="scope"):
        solvers.make("zf", scope="cells")


def test_rzf_tends_to_zf_at_high_snr_and_to_mrt_at_low_snr():
    high, low = miso(20, seed=18, snr_db=120.0), miso(20, seed=18, snr_db=-120.0)
    zf, rzf, eq = solvers.make("zf"), solvers.make("rzf"), solvers.make("equal_power")

    def directions(a):
        v = complex_precoders(a)[..., 0]
        return v / np.linalg.norm(v, axis=-1, keepdims=True)

    def alignment(a, b):
        return np.abs((directions(a).conj() * directions(b)).sum(-1))

    np.testing.assert_allclose(alignment(rzf.act_batch(high), zf.act_batch(high)), 1.0, atol=1e-6)
    np.testing.assert_allclose(alignment(rzf.act_batch(low), eq.act_batch(low)), 1.0, atol=1e-6)


def test_mrt_splits_by_channel_gain_and_equal_power_equally():
    obs = miso(3, seed=19)
    h2 = (obs["channel"] ** 2).sum(axis=(-1, -2, -3, -4))  # ||h_k||^2, (B, K)
    mrt = (solvers.make("mrt").act_batch(obs) ** 2).sum(axis=(-1, -2, -3))
    eq = (solvers.make("equal_power").act_batch(obs) ** 2).sum(axis=(-1, -2, -3))
    np.testing.assert_allclose(mrt / mrt.sum(-1, keepdims=True), h2 / h2.sum(-1, keepdims=True), rtol=1e-10)
    np.testing.assert_allclose(eq, np.broadcast_to(obs["pmax"] / 4, eq.shape), rtol=1e-10)
    np.testing.assert_allclose(solvers.make("max_power").act_batch(obs), solvers.make("equal_power").act_batch(obs))


def test_random_power_is_seeded_and_spends_the_budget():
    obs = network(3, 4, 2, 2, 4, seed=20)
    a, b, c = (solvers.make("random_power", seed=s).act_batch(obs) for s in (1, 1, 2))
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)
    np.testing.assert_allclose(transmitter_powers(obs, a), obs["pmax"], rtol=1e-10)


def test_multi_stream_directions_are_the_strongest_modes():
    """MRT with ``d = Nr`` is the matched filter ``H^H`` itself, scaled to the budget."""
    obs = network(2, 2, 1, 2, 4, seed=21)
    v = complex_precoders(solvers.make("mrt").act_batch(obs))
    h = complex_precoders(obs["channel"])[:, :, 0]  # (B, K, Nr, Nt)
    ratio = v / np.conj(np.swapaxes(h, -1, -2))
    np.testing.assert_allclose(ratio, ratio[:, :1, :1, :1] * np.ones_like(ratio), rtol=1e-10)


# --- the beamforming envs -----------------------------------------------------------------------------------
def beamforming_env_ids() -> list[str]:
    from l2o_env.scenarios import SCENARIOS

    return [row.env_id for row in SCENARIOS.values() if row.problem == "beamforming"]


SMALL_ENV = {"Beamforming-D2D-v0": {"num_links": 6}}


@pytest.mark.parametrize("env_id", beamforming_env_ids())
def test_on_the_envs_every_solver_is_feasible_and_wmmse_beats_mrt(env_id):
    from l2o_env.data import ObservationSampler

    obs = ObservationSampler(env_id, seed=0, **SMALL_ENV.get(env_id, {}))(8)
    rates = {}
    for name, kwargs in PRECODERS.items():
        try:
            action = solvers.make(name, **kwargs).act_batch(obs)
        except ValueError as exc:  # zf where the streams do not fit the antennas
            assert name == "zf" and "Nt=" in str(exc)
            continue
        assert np.all(transmitter_powers(obs, action) <= obs["pmax"] * (1 + 1e-6))  # float32 budgets
        assert not BF.project(obs, action, tol=1e-6)[1].any()
        rates[name] = wsr(obs, action).mean()
    assert rates["wmmse"] > max(v for k, v in rates.items() if k != "wmmse")


def test_wmmse_steps_a_beamforming_env():
    import gymnasium as gym

    import l2o_env  # noqa: F401  (registers the IDs)

    env = gym.make("Beamforming-MISO-v0")
    obs, _ = env.reset(seed=0)
    action = solvers.make("wmmse").act(obs)
    assert env.action_space.shape == action.shape
    _, reward, _, _, info = env.step(action)
    batch = {k: np.asarray(v, dtype=np.float64)[None] for k, v in obs.items()}
    assert reward == pytest.approx(float(wsr(batch, action[None])[0]), rel=1e-5)
    assert reward > float(wsr(batch, solvers.make("mrt").act(obs)[None])[0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_wmmse_on_cuda_equals_the_cpu():
    obs = network(16, 4, 2, 2, 4, seed=24, weighted=True)
    cpu = solvers.make("wmmse").act_batch(obs)
    gpu = solvers.make("wmmse", device="cuda").act_batch(obs)
    np.testing.assert_allclose(wsr(obs, gpu), wsr(obs, cpu), rtol=1e-6)


# --- the power-control path is untouched ------------------------------------------------------------------
def ic_obs(k: int, b: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    h = (rng.standard_normal((b, k, k)) + 1j * rng.standard_normal((b, k, k))) / np.sqrt(2.0)
    return {"gain": np.abs(h) ** 2, "weight": rng.uniform(0, 1, (b, k)), "noise": np.ones((b, k)),
            "pmax": np.ones((b, k))}


@pytest.mark.parametrize("name,kwargs", [("wmmse", {}), ("truncated_wmmse", {"iterations": 4})])
def test_power_control_outputs_are_the_scalar_core_bit_for_bit(name, kwargs):
    obs = ic_obs(6, 30, seed=22)
    t = {k: torch.as_tensor(v) for k, v in obs.items()}
    max_iter, tol = (100, 1e-3) if name == "wmmse" else (4, 0.0)
    power, _ = wmmse_run(t["gain"], t["noise"], t["pmax"], t["weight"], max_iter=max_iter, tol=tol)
    np.testing.assert_array_equal(solvers.make(name, **kwargs).act_batch(obs), power.numpy())


def test_power_control_baselines_unchanged():
    obs = ic_obs(5, 4, seed=23)
    np.testing.assert_array_equal(solvers.make("max_power").act_batch(obs), obs["pmax"])
    drawn = solvers.make("random_power", seed=3).act_batch(obs)
    np.testing.assert_array_equal(drawn, np.random.default_rng(3).random((4, 5)) * obs["pmax"])
