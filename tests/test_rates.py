"""The one rate formula: numpy and torch twins agree, and both match a hand-computed K=2 case."""

import numpy as np
import pytest
import torch

from l2o_env.rates import link_rates, link_rates_torch, weighted_sum_rate, weighted_sum_rate_torch


def test_hand_computed_two_links():
    # gain[i, j]: transmitter j -> receiver i
    gain = np.array([[1.0, 0.5], [0.25, 2.0]])
    power = np.array([1.0, 0.5])
    noise = np.array([1.0, 0.5])
    # link 0: S = 1 * 1, I = 0.5 * 0.5 = 0.25, N = 1  -> log2(1 + 1/1.25)
    # link 1: S = 2 * 0.5 = 1, I = 0.25 * 1 = 0.25, N = 0.5 -> log2(1 + 1/0.75)
    want = np.array([np.log2(1 + 1 / 1.25), np.log2(1 + 1 / 0.75)])
    np.testing.assert_allclose(link_rates(gain, power, noise), want, rtol=1e-12)
    np.testing.assert_allclose(weighted_sum_rate(gain, power, noise, [2.0, 0.5]), 2 * want[0] + 0.5 * want[1])
    got_t = link_rates_torch(torch.tensor(gain), torch.tensor(power), torch.tensor(noise)).numpy()
    np.testing.assert_allclose(got_t, want, rtol=1e-12)


def test_numpy_and_torch_agree_batched():
    rng = np.random.default_rng(1)
    gain = rng.exponential(size=(64, 7, 7))
    power = rng.uniform(size=(64, 7))
    noise = rng.uniform(0.1, 2.0, size=(64, 7))
    weight = rng.uniform(size=(64, 7))
    a = weighted_sum_rate(gain, power, noise, weight)
    b = weighted_sum_rate_torch(*(torch.tensor(x) for x in (gain, power, noise, weight))).numpy()
    assert a.shape == (64,)
    np.testing.assert_allclose(a, b, rtol=1e-12)


def test_any_memory_layout_gives_the_same_rates():
    rng = np.random.default_rng(2)
    gain = rng.exponential(size=(3, 5, 5))
    power = rng.uniform(size=(3, 5))
    np.testing.assert_allclose(link_rates(np.swapaxes(gain, -1, -2), power, 1.0),
                               link_rates(np.ascontiguousarray(np.swapaxes(gain, -1, -2)), power, 1.0))
    np.testing.assert_allclose(link_rates(np.asfortranarray(gain), power, 1.0), link_rates(gain, power, 1.0))


def test_no_cancellation_at_very_high_snr():
    # SNR 1e15 with no interference: total - signal would round the interference to garbage
    gain = np.array([[[1.0, 0.0], [0.0, 1.0]]])
    rates = link_rates(gain, np.ones((1, 2)), 1e-15)
    np.testing.assert_allclose(rates, np.log2(1 + 1e15), rtol=1e-12)
    rates_t = link_rates_torch(torch.tensor(gain), torch.ones(1, 2, dtype=torch.float64), 1e-15)
    np.testing.assert_allclose(rates_t.numpy(), np.log2(1 + 1e15), rtol=1e-12)


def test_torch_rate_is_differentiable_in_power():
    gain = torch.tensor([[[1.0, 0.5], [0.25, 2.0]]], dtype=torch.float64)
    power = torch.tensor([[1.0, 0.5]], dtype=torch.float64, requires_grad=True)
    weighted_sum_rate_torch(gain, power, torch.ones(1, 2, dtype=torch.float64)).sum().backward()
    assert power.grad is not None and torch.isfinite(power.grad).all()
    # more own power helps the own link more than it hurts the other at these values
    assert power.grad[0, 0] > 0


@pytest.mark.parametrize("k", [1, 3])
def test_zero_power_gives_zero_rate(k):
    gain = np.ones((2, k, k))
    assert np.all(link_rates(gain, np.zeros((2, k)), 1.0) == 0.0)
