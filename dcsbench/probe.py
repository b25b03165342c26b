"""The latent-action probe: how linearly a method's latent actions predict the true actions.

This is the paper's latent-action quality measure, computed by the harness (never by the agent):

* ``probe_mse_train`` - a ridge probe ``latent -> true action`` fitted on train-background
  trajectories with all their actions (the harness owns them) and scored on *held-out*
  train-background trajectories;
* ``probe_mse_novel`` - the same probe scored on the ``eval`` split (novel backgrounds);
* ``action_var_train`` / ``action_var_novel`` - the MSE of the constant predictor (the mean
  fitted action) on the same two test sets: a probe means nothing above these;
* ``probe_mse_train_random`` - the same protocol on the latents of an untrained, randomly
  initialised copy of the method's model: random convolutional features are already a strong
  linear basis, so a trained model has learned something only where it beats this.

MSE is the mean over test pairs and action dimensions of the squared error.

The ridge strength is chosen by cross-validation with folds **grouped by trajectory**:
adjacent frames are near-duplicates, so interleaved folds would leak and always pick the
weakest regularisation. Strengths are relative to the mean squared (centred) feature norm, so
the grid is scale-free. One eigendecomposition per fold (of the smaller of the Gram and the
covariance matrix) evaluates the whole grid.

Everything here is a pure function of arrays, except :func:`probe_report`, which draws the
pairs from the harness's views and asks a latent function for their latents.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

#: Relative ridge strengths tried by cross-validation.
DEFAULT_ALPHAS: tuple[float, ...] = tuple(10.0 ** e for e in range(-6, 4))

#: Every ``HELDOUT_EVERY``-th train trajectory (ids ``k, k + HELDOUT_EVERY, ...``) is held out.
HELDOUT_EVERY = 4

#: At most this many pairs fit the probe; at most ``MAX_TEST`` score it on each test set.
MAX_FIT = 10_000
MAX_TEST = 5_000

LatentFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class RidgeProbe:
    """A fitted linear probe ``a ~ z @ weight + bias`` and the relative strength CV chose."""

    weight: np.ndarray
    bias: np.ndarray
    alpha: float
    cv_mse: float

    def predict(self, z: np.ndarray) -> np.ndarray:
        """Predicted actions ``(n, action_dim)`` for latents ``z`` ``(n, ...)``."""
        z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
        return z @ self.weight + self.bias


def mse(pred: np.ndarray, target: np.ndarray) -> float:
    """Mean squared error over samples and action dimensions."""
    pred, target = np.asarray(pred, np.float64), np.asarray(target, np.float64)
    if pred.shape != target.shape:
        raise ValueError(f"prediction shape {pred.shape} != target shape {target.shape}")
    return float(np.mean((pred - target) ** 2))


class _Solver:
    """Ridge solutions for many strengths from one eigendecomposition (primal or dual form)."""

    def __init__(self, z: np.ndarray, a: np.ndarray) -> None:
        self.zm, self.am = z.mean(0), a.mean(0)
        zc, ac = z - self.zm, a - self.am
        self.scale = max(float(np.mean(np.sum(zc ** 2, axis=1))), 1e-12)
        n, d = zc.shape
        self.dual = d > n
        if self.dual:
            s, u = np.linalg.eigh(zc @ zc.T)
            self.zc, self.u, self.q = zc, u, u.T @ ac
        else:
            s, v = np.linalg.eigh(zc.T @ zc)
            self.v, self.p = v, v.T @ (zc.T @ ac)
        self.s = np.clip(s, 0.0, None)

    def weight(self, alpha: float) -> np.ndarray:
        inv = 1.0 / (self.s + alpha * self.scale)
        if self.dual:
            return self.zc.T @ (self.u @ (self.q * inv[:, None]))
        return self.v @ (self.p * inv[:, None])

    def probe(self, alpha: float, cv_mse: float = float("nan")) -> RidgeProbe:
        w = self.weight(alpha)
        return RidgeProbe(w, self.am - self.zm @ w, float(alpha), float(cv_mse))


def grouped_folds(groups: np.ndarray, n_folds: int) -> list[np.ndarray]:
    """Boolean test masks of ``n_folds`` folds; every group (trajectory) falls in exactly one."""
    uniq = np.unique(groups)
    if len(uniq) < 2:
        raise ValueError("cross-validation needs pairs from at least 2 trajectories")
    k = min(int(n_folds), len(uniq))
    fold_of = {g: i % k for i, g in enumerate(uniq)}
    f = np.array([fold_of[g] for g in groups])
    return [f == i for i in range(k)]


def fit_ridge_cv(z: np.ndarray, a: np.ndarray, groups: np.ndarray,
                 alphas: tuple[float, ...] = DEFAULT_ALPHAS, n_folds: int = 3) -> RidgeProbe:
    """Fit a ridge probe whose strength is chosen by trajectory-grouped cross-validation.

    Args:
        z: latents ``(n, ...)`` (flattened to ``(n, d)``).
        a: true actions ``(n, action_dim)``.
        groups: trajectory id of each pair ``(n,)``; folds never split a trajectory.
        alphas: relative ridge strengths to try (times the mean squared feature norm).
        n_folds: number of folds (at most the number of trajectories).

    Returns:
        The probe refitted on all pairs with the strength of lowest mean CV MSE.
    """
    z = np.asarray(z, dtype=np.float64).reshape(len(z), -1)
    a = np.asarray(a, dtype=np.float64)
    groups = np.asarray(groups)
    if not (len(z) == len(a) == len(groups)) or len(z) == 0:
        raise ValueError(f"z, a and groups need the same non-zero length, got "
                         f"{len(z)}, {len(a)}, {len(groups)}")
    if not (np.all(np.isfinite(z)) and np.all(np.isfinite(a))):
        raise ValueError("latents and actions must be finite")
    errs = np.zeros(len(alphas))
    for test in grouped_folds(groups, n_folds):
        solver = _Solver(z[~test], a[~test])
        for j, alpha in enumerate(alphas):
            errs[j] += mse(solver.probe(alpha).predict(z[test]), a[test])
    best = int(np.argmin(errs))
    return _Solver(z, a).probe(alphas[best], errs[best] / len(grouped_folds(groups, n_folds)))


def probe_mse(z_fit, a_fit, groups_fit, z_test, a_test, **cv) -> float:
    """MSE on ``(z_test, a_test)`` of a probe fitted by :func:`fit_ridge_cv` on the fit set."""
    return mse(fit_ridge_cv(z_fit, a_fit, groups_fit, **cv).predict(z_test), a_test)


def split_trajectories(n_trajectories: int, every: int = HELDOUT_EVERY
                       ) -> tuple[np.ndarray, np.ndarray]:
    """``(fit_ids, heldout_ids)``: every ``every``-th trajectory (from ``every // 2``) is held
    out, the rest fit the probe. Needs at least 3 trajectories (2 to cross-validate, 1 held out)."""
    if n_trajectories < 3:
        raise ValueError(f"the probe needs >= 3 train trajectories, got {n_trajectories}")
    ids = np.arange(n_trajectories)
    held = (ids % every) == (every // 2) % min(every, n_trajectories)
    if held.all() or not held.any():  # pragma: no cover - guarded by n >= 3
        held = ids == ids[-1]
    return ids[~held], ids[held]


def pairs_of(view, trajectory_ids, max_pairs: int) -> tuple[np.ndarray, np.ndarray]:
    """Evenly spaced ``(traj, t)`` pairs (``t`` in ``0..T-2``) of some trajectories of a view,
    at most ``max_pairs`` of them, as two int64 arrays (view trajectory indices and steps)."""
    trajectory_ids = np.asarray(trajectory_ids, dtype=np.int64)
    per = view.lengths[trajectory_ids] - 1
    cum = np.concatenate([[0], np.cumsum(per)])
    total = int(cum[-1])
    if total == 0:
        raise ValueError("no (o_t, o_t+1) pairs in these trajectories")
    pos = np.unique(np.linspace(0, total - 1, num=min(max_pairs, total)).round().astype(np.int64))
    k = np.searchsorted(cum, pos, side="right") - 1
    return trajectory_ids[k], pos - cum[k]


def latents_of(latent_fn: LatentFn, view, traj: np.ndarray, t: np.ndarray,
               batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Latents (``latent_fn`` on stacked ``(o_t, o_t+1)``) and true actions of the given pairs."""
    zs, acts = [], []
    for s in range(0, len(t), batch_size):
        batch = view.stacks_at(traj[s:s + batch_size], t[s:s + batch_size])
        z = np.asarray(latent_fn(batch["obs"], batch["next_obs"]))
        if z.shape[:1] != (len(batch["obs"]),):
            raise ValueError(f"latent_actions returned shape {z.shape} for a batch of "
                             f"{len(batch['obs'])} pairs")
        zs.append(z.reshape(len(z), -1).astype(np.float64))
        acts.append(batch["action"])
    return np.concatenate(zs), np.concatenate(acts).astype(np.float64)


def _one(latent_fn: LatentFn, train_view, fit_ids, held_ids, eval_split, max_fit, max_test,
         with_novel: bool) -> dict[str, float]:
    traj, t = pairs_of(train_view, fit_ids, max_fit)
    z_fit, a_fit = latents_of(latent_fn, train_view, traj, t)
    probe = fit_ridge_cv(z_fit, a_fit, traj)
    mean_a = a_fit.mean(0)
    ht, tt = pairs_of(train_view, held_ids, max_test)
    z_held, a_held = latents_of(latent_fn, train_view, ht, tt)
    out = {"probe_mse_train": mse(probe.predict(z_held), a_held),
           "action_var_train": mse(np.broadcast_to(mean_a, a_held.shape), a_held),
           "probe_alpha": probe.alpha, "probe_fit_n": float(len(z_fit)),
           "probe_train_test_n": float(len(z_held)), "latent_dim": float(z_fit.shape[1])}
    if with_novel and eval_split is not None:
        et, ett = pairs_of(eval_split, np.arange(eval_split.n_trajectories), max_test)
        z_nov, a_nov = latents_of(latent_fn, eval_split, et, ett)
        out.update({"probe_mse_novel": mse(probe.predict(z_nov), a_nov),
                    "action_var_novel": mse(np.broadcast_to(mean_a, a_nov.shape), a_nov),
                    "probe_novel_test_n": float(len(z_nov))})
    return out


def probe_report(latent_fn: LatentFn, train_view, eval_split=None,
                 random_latent_fn: LatentFn | None = None, max_fit: int = MAX_FIT,
                 max_test: int = MAX_TEST) -> dict[str, float]:
    """All probe metrics of one method (see the module docstring for their meaning).

    Args:
        latent_fn: the trained method's ``latent_actions(obs, next_obs)``.
        train_view: a labeled view of **every** train trajectory (harness only).
        eval_split: the eval split (novel backgrounds), or ``None`` to skip ``*_novel``.
        random_latent_fn: ``latent_actions`` of an untrained copy, or ``None`` to skip
            ``probe_mse_train_random``.
        max_fit, max_test: caps on the number of pairs (evenly spaced over the trajectories).

    Returns:
        ``probe_mse_train``, ``action_var_train``, ``probe_mse_novel``, ``action_var_novel``,
        ``probe_mse_train_random`` (when computable) and bookkeeping (``probe_alpha``,
        ``probe_fit_n``, ``probe_train_test_n``, ``probe_novel_test_n``, ``latent_dim``).
    """
    fit_ids, held_ids = split_trajectories(train_view.n_trajectories)
    out = _one(latent_fn, train_view, fit_ids, held_ids, eval_split, max_fit, max_test, True)
    if random_latent_fn is not None:
        rnd = _one(random_latent_fn, train_view, fit_ids, held_ids, None, max_fit, max_test, False)
        out["probe_mse_train_random"] = rnd["probe_mse_train"]
    return out
