"""The harness's latent-action probe (dcsbench.probe): ridge maths, grouped folds, the report."""

from __future__ import annotations

import numpy as np
import pytest

from dcsbench import probe
from dcsbench.data import make_views_from_arrays


def test_ridge_recovers_a_linear_map_in_primal_and_dual_form():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 5))
    a = z @ rng.normal(size=(5, 2)) + 0.3
    groups = np.repeat(np.arange(10), 20)
    for zz in (z, np.concatenate([z, np.zeros((200, 400))], 1)):   # d < n and d > n
        p = probe.fit_ridge_cv(zz, a, groups)
        assert np.abs(p.predict(zz) - a).max() < 1e-2
        assert p.alpha == min(probe.DEFAULT_ALPHAS)


def test_cv_picks_strong_regularisation_for_noise_features():
    rng = np.random.default_rng(1)
    z, a = rng.normal(size=(300, 50)), rng.normal(size=(300, 2))
    p = probe.fit_ridge_cv(z, a, np.repeat(np.arange(6), 50))
    assert p.alpha >= 10.0          # noise: shrink to the mean


def test_grouped_folds_never_split_a_trajectory():
    groups = np.repeat([3, 1, 2, 7, 5], 4)
    folds = probe.grouped_folds(groups, 3)
    assert sum(f.sum() for f in folds) == len(groups)
    for f in folds:
        assert set(groups[f]).isdisjoint(groups[~f])
    with pytest.raises(ValueError, match="at least 2 trajectories"):
        probe.grouped_folds(np.zeros(5), 3)


def test_interleaved_pairs_leak_but_grouped_cv_does_not():
    """Near-duplicate neighbours: a random-walk 'latent' memorises per-step noise. Held-out
    trajectories see it for what it is (no better than the constant)."""
    rng = np.random.default_rng(2)
    n, t, d = 8, 100, 64
    a = rng.normal(size=(n * t, 1))
    z = np.cumsum(rng.normal(size=(n, t, d)), axis=1).reshape(n * t, d)   # unrelated to a
    groups = np.repeat(np.arange(n), t)
    held = groups == 7
    p = probe.fit_ridge_cv(z[~held], a[~held], groups[~held])
    const = probe.mse(np.broadcast_to(a[~held].mean(0), a[held].shape), a[held])
    assert probe.mse(p.predict(z[held]), a[held]) > 0.9 * const


def test_split_trajectories():
    fit, held = probe.split_trajectories(16)
    assert list(held) == [2, 6, 10, 14] and len(fit) == 12
    fit, held = probe.split_trajectories(3)
    assert len(held) == 1 and len(fit) == 2
    with pytest.raises(ValueError, match=">= 3"):
        probe.split_trajectories(2)


def _views(n=6, t=30, dim=2, seed=0):
    rng = np.random.default_rng(seed)
    frames, actions = [], []
    for _ in range(n):
        act = rng.uniform(-1, 1, size=(t, dim)).astype(np.float32)
        level = np.concatenate([np.zeros((1, dim)), np.cumsum(act[:-1], 0)]) * 10 + 128
        level = np.concatenate([level, np.full((t, 3 - dim), 128.0)], 1)
        frames.append(np.broadcast_to(np.round(level)[:, None, None, :], (t, 8, 8, 3)).astype(np.uint8))
        actions.append(act)
    return make_views_from_arrays(frames, actions, list(range(n)))[1]


def _pixel_diff(obs, nxt):
    return nxt[:, 0, 0, 6:8].astype(np.float32) - obs[:, 0, 0, 6:8].astype(np.float32)


def test_probe_report_separates_informative_from_random_latents():
    train, novel = _views(), _views(n=3, seed=5)
    rng = np.random.default_rng(0)
    rep = probe.probe_report(_pixel_diff, train, novel,
                             random_latent_fn=lambda o, n: rng.normal(size=(len(o), 4)))
    assert rep["probe_mse_train"] < 0.01 < rep["action_var_train"]
    assert rep["probe_mse_novel"] < 0.01 < rep["action_var_novel"]
    assert rep["probe_mse_train_random"] > 0.5 * rep["action_var_train"]
    assert rep["probe_fit_n"] == 5 * 29 and rep["probe_train_test_n"] == 29


def test_probe_report_refuses_malformed_latents():
    with pytest.raises(ValueError, match="returned shape"):
        probe.probe_report(lambda o, n: np.zeros((1, 3)), _views())
