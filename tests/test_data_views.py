"""Views: shapes, stacking at episode starts, episode boundaries, read-only arrays, no leaks."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from dcsbench.agent import LabeledView as LabeledProto
from dcsbench.agent import UnlabeledView as UnlabeledProto
from dcsbench.data import EvalSplit, make_views_from_arrays
from dcsbench.data.views import ArrayUnlabeledView

ACTION_MARK = 12345.0  # a value that only occurs in hidden actions


def _coded_frames(n_traj: int, length: int) -> list[np.ndarray]:
    """Frames whose pixels encode (trajectory, t): channel 0 = traj, channel 1 = t, channel 2 = 7."""
    out = []
    for i in range(n_traj):
        f = np.zeros((length, 64, 64, 3), dtype=np.uint8)
        f[..., 0] = i
        f[..., 1] = np.arange(length, dtype=np.uint8)[:, None, None]
        f[..., 2] = 7
        out.append(f)
    return out


def _actions(n_traj: int, length: int, dim: int = 2) -> list[np.ndarray]:
    acts = []
    for i in range(n_traj):
        a = np.zeros((length, dim), dtype=np.float32)
        a[:, 0] = i
        a[:, 1] = np.arange(length)
        acts.append(a)
    return acts


@pytest.fixture
def views():
    frames = _coded_frames(6, 20)
    actions = _actions(6, 20)
    for a in actions:
        a[0, 0] = ACTION_MARK  # hidden marker in every trajectory's first action
    return make_views_from_arrays(frames, actions, labeled_ids=[4, 1])


def _decode(stack: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(traj, t) of each of the 3 stacked frames: arrays (B, 3)."""
    traj = stack[:, 0, 0, 0::3].astype(int)
    t = stack[:, 0, 0, 1::3].astype(int)
    return traj, t


def test_protocols_and_shapes(views):
    unlabeled, labeled = views
    assert isinstance(unlabeled, UnlabeledProto) and isinstance(labeled, LabeledProto)
    assert not hasattr(unlabeled, "actions")
    assert unlabeled.n_trajectories == 6 and labeled.n_trajectories == 2
    assert unlabeled.trajectory_length == 20
    assert unlabeled.frames(3).shape == (20, 64, 64, 3)
    assert labeled.actions(0).shape == (20, 2) and labeled.actions(0).dtype == np.float32
    assert labeled.trajectory_ids == (4, 1)
    np.testing.assert_array_equal(labeled.frames(0), unlabeled.frames(4))
    assert labeled.actions(1)[5, 1] == 5 and labeled.actions(1)[5, 0] == 1
    with pytest.raises(IndexError):
        labeled.actions(2)


def test_arrays_are_read_only(views):
    unlabeled, labeled = views
    batch = labeled.sample(8, np.random.default_rng(0))
    for arr in (unlabeled.frames(0), labeled.frames(1), labeled.actions(0)):
        with pytest.raises(ValueError):
            arr[0] = 0
        with pytest.raises(ValueError):
            arr.flags.writeable = True
        base = arr
        while isinstance(base, np.ndarray):
            assert not base.flags.writeable
            base = base.base
        assert isinstance(base, (bytes, type(None)))
    assert batch["obs"].flags.writeable  # batches are fresh copies the agent may modify


@pytest.mark.parametrize("max_offset", [1, 3, 10])
def test_sample_respects_boundaries_and_stacks(views, max_offset):
    unlabeled, labeled = views
    rng = np.random.default_rng(1)
    for view in (unlabeled, labeled):
        b = view.sample(512, rng, max_offset=max_offset)
        assert b["obs"].shape == (512, 64, 64, 9) and b["obs"].dtype == np.uint8
        k = b["offset"]
        assert k.dtype == np.int64 and k.min() >= 1 and k.max() <= max_offset
        tr0, t0 = _decode(b["obs"])
        tr1, t1 = _decode(b["next_obs"])
        # Same trajectory for all six frames; never past the last frame.
        assert (tr0 == tr0[:, :1]).all() and (tr1 == tr0[:, :1]).all()
        assert t1[:, 2].max() <= 19
        np.testing.assert_array_equal(t1[:, 2] - t0[:, 2], k)
        for t in (t0, t1):  # stack = t-2, t-1, t clipped at 0 (first frame repeated)
            cur = t[:, 2]
            np.testing.assert_array_equal(t[:, 1], np.maximum(cur - 1, 0))
            np.testing.assert_array_equal(t[:, 0], np.maximum(cur - 2, 0))
        if view is labeled:
            assert set(np.unique(tr0)) <= {4, 1}
            a = b["action"]
            np.testing.assert_array_equal(a[:, 1], t0[:, 2])
            assert set(np.where(a[:, 0] == ACTION_MARK, -1, a[:, 0]).astype(int)) <= {-1, 4, 1}
    if max_offset == 10:
        assert len(np.unique(k)) == 10  # the whole range is used


def test_sample_reaches_episode_start_and_end(views):
    unlabeled, _ = views
    b = unlabeled.sample(4000, np.random.default_rng(2), max_offset=1)
    t0 = _decode(b["obs"])[1][:, 2]
    t1 = _decode(b["next_obs"])[1][:, 2]
    assert t0.min() == 0 and t1.max() == 19 and t0.max() == 18
    start = b["obs"][t0 == 0]
    assert (start[..., 1::3] == 0).all()  # all three stacked frames are frame 0


def test_fixed_offset_and_determinism(views):
    unlabeled, _ = views
    b1 = unlabeled.sample(64, np.random.default_rng(5), offset=4)
    b2 = unlabeled.sample(64, np.random.default_rng(5), offset=4)
    assert (b1["offset"] == 4).all()
    np.testing.assert_array_equal(b1["obs"], b2["obs"])
    with pytest.raises(ValueError, match="longer than"):
        unlabeled.sample(4, np.random.default_rng(0), offset=20)
    with pytest.raises(ValueError):
        unlabeled.sample(4, np.random.default_rng(0), max_offset=0)


def test_iter_stacks_covers_every_pair_in_order(views):
    unlabeled, labeled = views
    idx = np.concatenate([b["index"] for b in unlabeled.iter_stacks(37)])
    expected = np.array([(i, t) for i in range(6) for t in range(19)])
    np.testing.assert_array_equal(idx, expected)
    assert unlabeled.n_transitions == len(expected)
    batches = list(labeled.iter_stacks(16))
    acts = np.concatenate([b["action"] for b in batches])
    obs = np.concatenate([b["obs"] for b in batches])
    nxt = np.concatenate([b["next_obs"] for b in batches])
    assert len(acts) == 2 * 19
    np.testing.assert_array_equal(acts[:19], labeled.actions(0)[:19])
    tr, t = _decode(obs)
    assert (tr[:19] == 4).all() and (tr[19:] == 1).all()
    np.testing.assert_array_equal(_decode(nxt)[1][:, 2], t[:, 2] + 1)


def _reachable(obj, depth=6):
    """Every object reachable from ``obj`` via gc referents, ``.base`` and memoryview ``.obj``."""
    seen, stack, out = set(), [(obj, 0)], []
    while stack:
        o, d = stack.pop()
        if id(o) in seen or d > depth:
            continue
        seen.add(id(o))
        out.append(o)
        nxt = list(gc.get_referents(o))
        if isinstance(o, np.ndarray) and o.base is not None:
            nxt.append(o.base)
        if isinstance(o, memoryview):
            nxt.append(o.obj)
        if isinstance(o, type):
            continue  # classes lead to modules; data never lives there
        stack.extend((n, d + 1) for n in nxt)
    return out


def _contains_float(objs, value) -> bool:
    for o in objs:
        if isinstance(o, np.ndarray) and o.dtype.kind == "f" and (o == value).any():
            return True
        if isinstance(o, (bytes, bytearray)) and np.float32(value).tobytes() in o:
            return True
    return False


def test_views_leak_nothing(views):
    unlabeled, labeled = views
    assert not hasattr(unlabeled, "__dict__") and not hasattr(labeled, "__dict__")
    for name in ("actions", "_actions", "rewards", "states", "eval", "path", "filename"):
        assert not hasattr(unlabeled, name)
    reach_u = _reachable(unlabeled)
    assert not _contains_float(reach_u, ACTION_MARK)
    assert not any(isinstance(o, np.ndarray) and o.dtype.kind == "f" for o in reach_u)
    # The labeled view holds actions of its two trajectories only (2 x 20 rows).
    reach_l = _reachable(labeled)
    float_arrays = [o for o in reach_l if isinstance(o, np.ndarray) and o.dtype.kind == "f"]
    assert float_arrays and all(o.size <= 2 * 20 * 2 for o in float_arrays)
    float_traj = {int(v) for o in float_arrays for v in np.ravel(o[..., 0]) if v != ACTION_MARK}
    assert float_traj == {4, 1}


def test_bad_inputs():
    frames = _coded_frames(3, 5)
    with pytest.raises(ValueError):
        make_views_from_arrays(frames, _actions(2, 5), [0])
    with pytest.raises(ValueError):
        make_views_from_arrays(frames, _actions(3, 5), [0, 0])
    with pytest.raises(ValueError):
        make_views_from_arrays(frames, _actions(3, 5), [3])
    with pytest.raises(ValueError):
        ArrayUnlabeledView(np.zeros((4, 8, 8, 3), np.float32), [0], [4])


def test_variable_lengths_and_eval_split():
    frames = [f[:n] for f, n in zip(_coded_frames(3, 30), (10, 30, 5))]
    acts = [a[:n] for a, n in zip(_actions(3, 30), (10, 30, 5))]
    unlabeled, labeled = make_views_from_arrays(frames, acts, [1, 2])
    b = unlabeled.sample(2000, np.random.default_rng(0), max_offset=4)
    tr, t = _decode(b["next_obs"])
    lengths = np.array([10, 30, 5])
    assert (t[:, 2] < lengths[tr[:, 2]]).all()
    counts = np.bincount(tr[:, 2], minlength=3)
    assert counts[1] > counts[0] > counts[2]  # proportional to (length) weighting
    store = np.concatenate(frames)
    ev = EvalSplit(store, [0, 10, 40], [10, 30, 5], np.concatenate(acts), seeds=[7, 8, 9])
    assert ev.seeds == (7, 8, 9) and ev.actions(2).shape == (5, 2)


def test_torch_sampler_matches_semantics(views):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    _, labeled = views
    s = labeled.as_torch("cpu")
    b = s.sample(256, torch.Generator().manual_seed(0), max_offset=5)
    obs, nxt, k = b["obs"].numpy(), b["next_obs"].numpy(), b["offset"].numpy()
    tr0, t0 = _decode(obs)
    tr1, t1 = _decode(nxt)
    assert set(np.unique(tr0)) <= {4, 1} and (tr1 == tr0).all()
    np.testing.assert_array_equal(t1[:, 2] - t0[:, 2], k)
    np.testing.assert_array_equal(t0[:, 0], np.maximum(t0[:, 2] - 2, 0))
    assert t1[:, 2].max() <= 19
    np.testing.assert_array_equal(b["action"].numpy()[:, 1], t0[:, 2])


@pytest.mark.gpu
def test_torch_sampler_on_cuda(views):
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    unlabeled, labeled = views
    s = labeled.as_torch("cuda")
    b = s.sample(4096, torch.Generator("cuda").manual_seed(0), max_offset=10)
    assert b["obs"].is_cuda and b["obs"].dtype == torch.uint8 and b["obs"].shape == (4096, 64, 64, 9)
    tr0, t0 = _decode(b["obs"].cpu().numpy())
    tr1, t1 = _decode(b["next_obs"].cpu().numpy())
    k = b["offset"].cpu().numpy()
    assert set(np.unique(tr0)) == {4, 1} and (tr1 == tr0).all()
    np.testing.assert_array_equal(t1[:, 2] - t0[:, 2], k)
    np.testing.assert_array_equal(t0[:, 1], np.maximum(t0[:, 2] - 1, 0))
    assert t1[:, 2].max() <= 19 and k.min() >= 1 and k.max() <= 10
    np.testing.assert_array_equal(b["action"].cpu().numpy()[:, 1], t0[:, 2])
    u = unlabeled.as_torch("cuda").sample(256, None, offset=2)
    assert (u["offset"] == 2).all() and "action" not in u
