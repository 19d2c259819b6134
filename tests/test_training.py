"""solvers/training.py: the one training loop of the learned solvers (history and meta schemas, the rule for
fitting a loaded model, seeding, callbacks, per-layer outputs). A few seconds in all."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import solvers
from l2o_env.data import ObservationSampler
from solvers.learned import LearnedSolver, to_torch
from solvers.mlp import MLPSolver
from solvers.training import HISTORY_KEYS, META_KEYS, Callback, CallbackList, as_callback
from solvers.uwmmse import UWMMSE
from solvers.wcgcn import WCGCN


@pytest.fixture(autouse=True)
def _one_thread(one_thread):
    """Every test here on one torch thread (the conftest fixture)."""


def ic(seed=0, k=4):
    return ObservationSampler("PowerControl-IC-v0", seed=seed, num_links=k, snr_db=10.0)


# small, fast configurations of the three learned solvers
SMALL = {
    "mlp": dict(num_links=4, num_bs=0, hidden=(16, 16), pool_size=300, batch_size=50, val_size=64, eval_every=3,
                label_chunk=300),
    "uwmmse": dict(hidden=3, batch_size=16, val_size=32, val_every=3),
    "wcgcn": dict(hidden1=8, hidden2=4, batch_size=16, val_size=32, val_every=3),
}


def state(solver) -> dict:
    return {k: v.detach().clone() for k, v in solver.model.state_dict().items()}


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


# --- one schema ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mlp", "uwmmse", "wcgcn"])
def test_history_and_meta_follow_one_schema(name):
    solver = solvers.make(name, **SMALL[name])
    hist = solver.fit(ic(1), steps=7, seed=0, progress=False)
    assert set(HISTORY_KEYS) <= set(hist)
    assert hist["step"] == list(range(1, 8)) and len(hist["loss"]) == 7
    assert hist["val_step"] == [0, 3, 6, 7] and len(hist["val_ratio"]) == len(hist["lr"]) == 4
    assert hist["best_val_ratio"] == max(hist["val_ratio"])
    assert hist["val_step"][hist["val_ratio"].index(hist["best_val_ratio"])] == hist["best_step"]
    assert hist["stopped_early"] is False and hist["stop_reason"] is None and hist["skipped_steps"] == 0
    assert hist["wall_time"] > 0 and hist["cpu_time"] > 0
    assert all(math.isfinite(v) for v in hist["loss"])
    meta = solver.meta
    assert set(META_KEYS) <= set(meta)
    assert meta["env_id"] == "PowerControl-IC-v0" and meta["steps"] == 7 and meta["seed"] == 0
    assert meta["sampler_seed"] == 1 and meta["val_size"] == SMALL[name]["val_size"]
    assert meta["val_ratio_to_wmmse"] == hist["best_val_ratio"] and meta["best_step"] == hist["best_step"]
    # the kept weights are the best validated ones
    val = ic(1)(SMALL[name]["val_size"])  # the sampler's first draw is the validation batch
    assert solver.ratio_to_wmmse(val) == pytest.approx(hist["best_val_ratio"], rel=1e-9)


def test_a_sampler_without_scenario_attributes_records_none_or_keeps_the_callers_meta():
    draw = ic(2)
    net = WCGCN(**SMALL["wcgcn"])
    net.fit(lambda b: draw(b), steps=1, progress=False)
    assert net.meta["env_id"] is None and net.meta["env_kwargs"] is None and net.meta["sampler_seed"] is None
    net = WCGCN(**SMALL["wcgcn"])
    net.meta.update(env_id="PowerControl-IC-v0", env_kwargs={"num_links": 4})
    net.fit(lambda b: draw(b), steps=1, progress=False)
    assert net.meta["env_id"] == "PowerControl-IC-v0" and net.meta["env_kwargs"] == {"num_links": 4}


def test_steps_zero_only_validates_and_bad_arguments_are_refused():
    s = UWMMSE(**SMALL["uwmmse"])
    hist = s.fit(ic(), steps=0, progress=False)
    assert hist["step"] == [] and hist["val_step"] == [0] and s.meta["steps"] == 0 and s.is_trained
    assert UWMMSE(**SMALL["uwmmse"]).fit(ic(), steps=2.0, progress=False)["step"] == [1, 2]  # integral float
    with pytest.raises(ValueError, match="steps"):
        s.fit(ic(), steps=-1, progress=False)
    with pytest.raises(ValueError, match="seed"):
        s.fit(ic(), steps=1, seed=1.5, progress=False)
    with pytest.raises(TypeError, match="sampler"):
        s.fit("not a sampler", steps=1, progress=False)
    with pytest.raises(TypeError, match="callback"):
        s.fit(ic(), steps=1, progress=False, callback=42)


def test_no_subclass_magic_marks_fit():
    # the loop sets the trained flag itself; LearnedSolver no longer wraps subclass methods
    assert "__init_subclass__" not in LearnedSolver.__dict__
    assert "fit" not in MLPSolver.__dict__ and "fit" not in UWMMSE.__dict__ and "fit" not in WCGCN.__dict__


# --- the initialisation rule -------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mlp", "uwmmse", "wcgcn"])
def test_two_fresh_fits_with_one_seed_give_identical_weights(name):
    torch.manual_seed(123)
    a = solvers.make(name, **SMALL[name])
    ha = a.fit(ic(3), steps=5, seed=7, progress=False)
    torch.manual_seed(999)  # another random state, another construction: fit redraws the model from its seed
    torch.rand(1000)
    b = solvers.make(name, random_init=True, **SMALL[name])
    b.act_batch(ic(4)(2))
    hb = b.fit(ic(3), steps=5, seed=7, progress=False)
    assert_same_state(state(a), state(b))
    assert ha["loss"] == hb["loss"] and ha["val_ratio"] == hb["val_ratio"]
    c = solvers.make(name, **SMALL[name])
    c.fit(ic(3), steps=5, seed=8, progress=False)
    assert any(not torch.equal(v, state(c)[k]) for k, v in state(a).items())


def test_uwmmse_fit_seed_draws_the_initial_weights():
    """The former UWMMSE.fit seeded torch after the model was built, so fit(seed=) did not choose its start."""
    u1, u2 = UWMMSE(**SMALL["uwmmse"]), UWMMSE(init_seed=1, **SMALL["uwmmse"])  # different initial weights
    assert not torch.equal(u1.model.gcn.w11, u2.model.gcn.w11)
    u1.fit(ic(5), steps=0, seed=3, progress=False)
    u2.fit(ic(5), steps=0, seed=3, progress=False)
    assert_same_state(state(u1), state(u2))


@pytest.mark.parametrize("name", ["mlp", "uwmmse", "wcgcn"])
def test_a_fitted_model_continues_from_its_weights(name):
    solver = solvers.make(name, **SMALL[name])
    solver.fit(ic(1), steps=4, seed=0, progress=False)
    kept = state(solver)
    solver.fit(ic(2), steps=0, seed=5, progress=False)  # continue: nothing is redrawn
    assert_same_state(kept, state(solver))
    before = solver.ratio_to_wmmse(ic(2)(SMALL[name]["val_size"]))  # the validation batch fit will draw
    hist = solver.fit(ic(2), steps=3, seed=5, progress=False)
    assert hist["val_ratio"][0] == pytest.approx(before, rel=1e-12) and hist["step"] == [1, 2, 3]
    assert solver.meta["steps"] == 7  # 4 + 0 + 3: the steps accumulate over fits


def test_wcgcn_fit_keeps_the_normalisation_of_a_fitted_model():
    net = WCGCN(**SMALL["wcgcn"])
    net.fit(ic(1), steps=2, progress=False)
    mean, std = net.model.feat_mean.clone(), net.model.feat_std.clone()
    net.fit(ObservationSampler("PowerControl-IC-v0", seed=9, num_links=4, snr_db=30.0), steps=2, progress=False)
    assert torch.equal(mean, net.model.feat_mean) and torch.equal(std, net.model.feat_std)


# fit on a loaded shipped checkpoint: the validation ratio of the step-0 weights IS the loaded model's (no
# re-initialisation), training continues from there, and a fixed test batch keeps its ratio
@pytest.mark.parametrize("name, tag, env_id, kwargs, steps", [
    ("wcgcn", "ic10", "PowerControl-IC-v0", {"num_links": 10, "snr_db": 10}, 10),
    ("uwmmse", "fixed", "PowerControl-AdHoc-v0", {"num_links": 20, "topology": "fixed"}, 6),
    ("mlp", "ic10", "PowerControl-IC-v0", {"num_links": 10}, 6),
])
def test_fit_on_a_loaded_checkpoint_does_not_lower_its_ratio(name, tag, env_id, kwargs, steps):
    solver = solvers.make(name, pretrained=tag)
    if name == "mlp":
        solver.config.pool_size = 1000  # a small labelled pool: this test is about the rule, not the recipe
    shipped_steps = solver.meta["steps"] if "steps" in solver.meta else solver.meta["train_steps"]
    sampler = ObservationSampler(env_id, seed=1, **kwargs)
    validation = ObservationSampler(env_id, seed=2, **kwargs)(256)
    test = ObservationSampler(env_id, seed=3, **kwargs)(512)
    before_val, before_test = solver.ratio_to_wmmse(validation), solver.ratio_to_wmmse(test)
    buffers = {k: v.clone() for k, v in solver.model.named_buffers()}
    hist = solver.fit(sampler, steps=steps, seed=0, progress=False, validation=validation)
    assert hist["val_ratio"][0] == pytest.approx(before_val, rel=1e-12)  # the loaded weights, not new ones
    assert min(hist["val_ratio"]) >= 0.98 * before_val  # training went on from the loaded weights
    assert solver.ratio_to_wmmse(test) >= 0.98 * before_test
    assert solver.meta["steps"] == shipped_steps + steps and "train_steps" not in solver.meta
    assert "command" not in solver.meta and "eval" not in solver.meta  # they were of the loaded weights
    if hist["best_step"] == 0:
        for key, value in buffers.items():  # e.g. WCGCN's normalisation
            assert torch.equal(value, dict(solver.model.named_buffers())[key]), key


def test_the_former_wcgcn_bug_is_gone():
    """``solvers.make("wcgcn", pretrained="ic10").fit(sampler, steps=1)`` re-initialised the weights (and kept
    the old normalisation): its validation ratio fell far below the loaded model's."""
    net = solvers.make("wcgcn", pretrained="ic10")
    sampler = ObservationSampler("PowerControl-IC-v0", seed=1, num_links=10, snr_db=10)
    test = ObservationSampler("PowerControl-IC-v0", seed=5, num_links=10, snr_db=10)(512)
    before = net.ratio_to_wmmse(test)
    net.model.train()  # fit's own eval/train switching must not matter
    hist = net.fit(sampler, steps=1, progress=False)
    assert hist["val_ratio"][-1] >= 0.98 * hist["val_ratio"][0] and net.ratio_to_wmmse(test) >= 0.98 * before


# --- the loop's options ----------------------------------------------------------------------------------
def test_patience_stops_and_keeps_the_best():
    s = UWMMSE(**{**SMALL["uwmmse"], "patience": 2, "val_every": 1})
    s.make_optimizer = lambda steps: torch.optim.SGD(s.model.parameters(), lr=0.0)  # the ratio never improves
    hist = s.fit(ic(), steps=50, progress=False)
    assert hist["stop_reason"] == "patience" and hist["stopped_early"]
    assert hist["step"] == [1, 2] and hist["best_step"] == 0


def test_non_finite_gradients_are_skipped():
    s = UWMMSE(**SMALL["uwmmse"])
    s.fit(ic(), steps=0, progress=False)
    kept = state(s)
    plain = s.loss
    s.loss = lambda batch: plain(batch) * torch.tensor(float("nan"), dtype=s.dtype)
    hist = s.fit(ic(), steps=4, progress=False)
    assert hist["skipped_steps"] == 4 and s.meta["skipped_steps"] == 4
    assert_same_state(kept, state(s))  # Adam never stepped on a NaN gradient


# --- callbacks ------------------------------------------------------------------------------------------
class Recorder(Callback):
    def __init__(self, stop_at_step=None, stop_at_validation=None):
        self.events = []
        self.stop_at_step, self.stop_at_validation = stop_at_step, stop_at_validation

    def on_train_start(self, solver, logs):
        self.events.append(("start", logs["steps"], logs["fresh"]))

    def on_step(self, step, logs):
        self.events.append(("step", step))
        assert set(logs) == {"step", "loss", "lr"}
        return False if step == self.stop_at_step else None

    def on_validation(self, step, logs):
        self.events.append(("val", step))
        assert {"step", "loss", "val_ratio", "best_val_ratio", "best_step", "lr"} <= set(logs)
        return False if step == self.stop_at_validation else True  # True continues

    def on_train_end(self, history):
        self.events.append(("end", len(history["step"])))


def test_callback_hooks_run_in_order_and_only_false_stops():
    rec = Recorder()
    WCGCN(**SMALL["wcgcn"]).fit(ic(), steps=4, progress=False, callback=rec)
    assert rec.events == [("start", 4, True), ("step", 1), ("step", 2), ("step", 3), ("val", 3), ("step", 4),
                          ("val", 4), ("end", 4)]


def test_on_step_false_stops_after_validating_that_step():
    rec = Recorder(stop_at_step=2)
    hist = MLPSolver(**SMALL["mlp"]).fit(ic(), steps=9, progress=False, callback=rec)
    assert hist["step"] == [1, 2] and hist["val_step"] == [0, 2] and hist["stop_reason"] == "callback"
    assert rec.events[-2:] == [("val", 2), ("end", 2)]


def test_a_list_of_callbacks_and_a_plain_callable():
    seen = []
    rec = Recorder(stop_at_validation=6)
    hist = UWMMSE(**SMALL["uwmmse"]).fit(ic(), steps=20, progress=False,
                                        callback=[rec, lambda step, logs: seen.append((step, logs["val_ratio"]))])
    assert [s for s, _ in seen] == [3, 6] and hist["step"][-1] == 6 and hist["stop_reason"] == "callback"
    assert [r for _, r in seen] == hist["val_ratio"][1:]
    assert isinstance(as_callback([rec]), CallbackList) and as_callback(None) is None and as_callback(rec) is rec


def test_a_plain_callable_returning_true_does_not_stop():
    # one rule for every callback: only False stops (stable-baselines3 style)
    hist = UWMMSE(**SMALL["uwmmse"]).fit(ic(), steps=6, progress=False, callback=lambda step, logs: True)
    assert hist["step"][-1] == 6 and not hist["stopped_early"]


# --- per-layer outputs -------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, layers", [("uwmmse", 4), ("wcgcn", 3), ("mlp", 1)])
def test_forward_layers_ends_with_forward(name, layers):
    kw = {"num_links": 10, "num_bs": 0} if name == "mlp" else {}
    solver = solvers.make(name, random_init=True, **kw)
    obs = to_torch(ic(6, k=10)(5), dtype=solver.dtype)
    outs = solver.forward_layers(obs)
    assert len(outs) == layers and all(o.shape == (5, 10) for o in outs)
    torch.testing.assert_close(outs[-1], solver.forward(obs), rtol=0, atol=0)
    if layers > 1:
        assert not torch.equal(outs[0], outs[-1])
        loss = sum(-o.sum() for o in outs)  # a loss over every layer is differentiable
        loss.backward()
        assert all(p.grad is not None for p in solver.model.parameters())


def test_forward_layers_of_a_shipped_unrolled_model():
    u = UWMMSE(pretrained=True)
    obs = to_torch(ObservationSampler("PowerControl-AdHoc-v0", seed=4, num_links=20)(3), dtype=u.dtype)
    with torch.no_grad():
        outs = u.forward_layers(obs)
        np.testing.assert_array_equal(outs[-1].numpy(), u.forward(obs).numpy())
    assert np.all(outs[0].numpy() <= obs["pmax"].numpy() + 1e-12)
