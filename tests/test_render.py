"""Pictures (l2o_env.envs.render): rgb_array frames of every env, human mode under Agg, Gymnasium's render
checks, the vector env's tuple of frames, rendering leaves the random stream alone, the movie example."""

from __future__ import annotations

import runpy
import warnings
from pathlib import Path

import gymnasium as gym
import matplotlib
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import l2o_env  # noqa: F401  (registers the env IDs)
from l2o_env.envs import PowerControlEnv
from l2o_env.envs.render import FRAME_SIZE, save_gif
from l2o_env.scenarios import ENV_IDS

matplotlib.use("Agg")  # the CI machine has no display; "human" must still work

GEOMETRIC = ["PowerControl-IMAC-v0", "PowerControl-AdHoc-v0", "PowerControl-D2D-v0", "Beamforming-IBC-v0",
             "Beamforming-D2D-v0"]
HEAT_MAP = ["PowerControl-IC-v0", "Beamforming-MISO-v0"]
SMALL = {  # small networks: frames are cheap either way, the checks' steps are not
    "PowerControl-IC-v0": {"num_links": 5}, "PowerControl-IMAC-v0": {"num_links": 6, "num_cells": 3},
    "PowerControl-AdHoc-v0": {"num_links": 6}, "PowerControl-D2D-v0": {"num_links": 8},
    "Beamforming-MISO-v0": {}, "Beamforming-IBC-v0": {}, "Beamforming-D2D-v0": {"num_links": 6},
}
H, W = FRAME_SIZE[1], FRAME_SIZE[0]


def test_the_lists_cover_every_id():
    assert sorted(GEOMETRIC + HEAT_MAP) == sorted(ENV_IDS)
    for env_id in ENV_IDS:
        env = gym.make(env_id)
        assert env.unwrapped.config.has_geometry == (env_id in GEOMETRIC)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_rgb_frames_have_one_shape_and_follow_the_action(env_id):
    env = gym.make(env_id, render_mode="rgb_array", **SMALL[env_id])
    assert env.render_mode == "rgb_array"
    env.reset(seed=0)
    first = env.render()
    assert isinstance(first, np.ndarray) and first.dtype == np.uint8 and first.shape == (H, W, 3)
    assert first.flags.c_contiguous and len(np.unique(first.reshape(-1, 3), axis=0)) > 10  # a picture, not a blank
    frames = []
    for scale in (0.05, 1.0):  # the same slot, two different actions: the picture must differ
        env.reset(seed=1)
        high = env.action_space.high
        env.step((scale * high).astype(np.float32))
        frames.append(env.render())
        assert frames[-1].shape == (H, W, 3) and frames[-1].dtype == np.uint8
    assert (frames[0] != frames[1]).any()
    assert (frames[1] != first).any()
    env.close()


@pytest.mark.parametrize("env_id", ["PowerControl-AdHoc-v0", "Beamforming-IBC-v0", "PowerControl-IC-v0"])
def test_rendering_changes_nothing_the_agent_sees(env_id):
    kw = dict(SMALL[env_id], speed=30.0, slot_duration=1e-3, csi_delay=1, weights="random")
    runs = []
    for mode in (None, "rgb_array"):
        env = gym.make(env_id, render_mode=mode, **kw)
        env.action_space.seed(0)
        obs, info = env.reset(seed=7)
        trace = [obs, info]
        for _ in range(4):
            if mode is not None:
                env.render()
            obs, reward, _, _, info = env.step(env.action_space.sample())
            trace += [obs, reward, info]
        runs.append(trace)
    for a, b in zip(*runs):
        if isinstance(a, dict):
            assert a.keys() == b.keys()
            for key in a:
                np.testing.assert_array_equal(a[key], b[key], err_msg=key)
        else:
            assert a == b


@pytest.mark.parametrize("env_id", ["PowerControl-IMAC-v0", "Beamforming-MISO-v0"])
def test_human_mode_draws_without_a_window_under_agg(env_id):
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    env = gym.make(env_id, render_mode="human", **SMALL[env_id])
    assert env.render_mode == "human"
    env.reset(seed=0)  # human mode draws at every reset and step
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "non-interactive, cannot be shown" warning
        env.step(env.action_space.sample())
        assert env.render() is None
    assert len(plt.get_fignums()) == len(before) + 1
    env.close()
    assert plt.get_fignums() == before


@pytest.mark.parametrize("env_id", ["PowerControl-AdHoc-v0", "Beamforming-IBC-v0", "PowerControl-IC-v0"])
def test_gymnasium_check_env_passes_the_render_checks(env_id):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(gym.make(env_id, render_mode="rgb_array", **SMALL[env_id]).unwrapped)
        # without a render_mode, check_env makes a new env of every mode in metadata["render_modes"]
        check_env(gym.make(env_id, **SMALL[env_id]))
    assert not [w for w in caught if "render" in str(w.message).lower()]


def test_metadata_and_refusals():
    env = gym.make("PowerControl-D2D-v0", render_mode="rgb_array")
    meta = env.unwrapped.metadata
    assert meta["render_modes"] == ["human", "rgb_array"] and meta["render_fps"] > 0
    with pytest.raises(ValueError, match=r"render_mode='ansi'.*\['human', 'rgb_array'\]"):
        PowerControlEnv("PowerControl-D2D-v0", render_mode="ansi")
    plain = gym.make("PowerControl-D2D-v0").unwrapped
    plain.reset(seed=0)
    with pytest.warns(UserWarning, match="without a render_mode"):
        assert plain.render() is None
    raw = PowerControlEnv("PowerControl-D2D-v0", render_mode="rgb_array")
    with pytest.raises(ValueError, match="before reset"):
        raw.render()
    # gym.make's list mode collects the frames of every step
    listed = gym.make("PowerControl-AdHoc-v0", render_mode="rgb_array_list", num_links=4)
    listed.reset(seed=0)
    listed.step(listed.action_space.sample())
    assert [f.shape for f in listed.render()] == [(H, W, 3)] * 2


def test_vector_env_renders_a_frame_per_sub_env():
    envs = gym.make_vec("PowerControl-AdHoc-v0", num_envs=2, render_mode="rgb_array", num_links=4, speed=3.0,
                        max_episode_steps=2)
    assert envs.metadata["render_modes"] == ["rgb_array"]
    envs.reset(seed=0)
    frames = envs.render()
    assert isinstance(frames, tuple) and len(frames) == 2
    assert all(f.shape == (H, W, 3) and f.dtype == np.uint8 for f in frames)
    envs.step(np.stack([np.full(4, 0.1), np.full(4, 1.0)]).astype(np.float32))
    acted = envs.render()
    assert (acted[0] != acted[1]).any() and (acted[0] != frames[0]).any()
    picture = envs.unwrapped._picture
    envs.step(envs.action_space.sample())  # both truncate (2 slots) and start new episodes in the same step
    assert (picture.steps == 0).all() and np.isnan(picture.share).all()
    envs.close()
    with pytest.raises(ValueError, match="render_mode='human'.*rgb_array.*gym.make"):
        gym.make_vec("PowerControl-AdHoc-v0", num_envs=2, render_mode="human")
    sync = gym.make_vec("PowerControl-IC-v0", num_envs=2, vectorization_mode="sync", render_mode="rgb_array",
                        num_links=3)
    sync.reset(seed=0)
    assert [f.shape for f in sync.render()] == [(H, W, 3)] * 2


def test_save_gif_writes_an_animation(tmp_path):
    from PIL import Image

    frames = [np.full((20, 30, 3), v, dtype=np.uint8) for v in (0, 128, 255)]
    path = tmp_path / "sub" / "a.gif"
    save_gif(frames, path, fps=5)
    with Image.open(path) as im:
        assert im.format == "GIF" and im.n_frames == 3 and im.size == (30, 20)
    with pytest.raises(ValueError, match="no frames"):
        save_gif([], path)


def test_mobility_movie_example_writes_a_gif(tmp_path, capsys):
    from PIL import Image

    path = Path(__file__).resolve().parents[1] / "examples" / "mobility_movie.py"
    mod = runpy.run_path(str(path), run_name="mobility_movie")
    out = tmp_path / "movie.gif"
    args = mod["parse_args"](["--slots", "4", "--every", "2", "--env-kwargs", "num_links=4", "--out", str(out)])
    assert args.csi_delay == 1 and args.speed == 30.0
    mod["main"](args)
    with Image.open(out) as im:
        assert im.format == "GIF" and im.n_frames == 3 and im.size == FRAME_SIZE
    text = capsys.readouterr().out
    assert "aged CSI" in text and "true channel" in text
