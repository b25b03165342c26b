"""Views of a dataset split handed to agents: they hold only what a method may see.

* :class:`ArrayUnlabeledView` - frames of every ``train`` trajectory. It has no attribute, slot or
  reference (direct or through ``.base`` chains) to actions, rewards, states, the eval split or a
  file path: those objects are simply never given to it.
* :class:`ArrayLabeledView` - frames **and actions** of the ``labeled-{B}`` trajectories only. Its
  action array is a fresh copy holding the B trajectories' actions, nothing else.
* :class:`EvalSplit` - frames and actions of the ``eval`` trajectories (novel backgrounds); for
  the harness's offline metrics only, never given to an agent.

Storage: all frames of a split live in one ``(N_frames, 64, 64, 3)`` uint8 array (trajectories
back to back), either an in-memory immutable buffer or a read-only memory map of the local cache
(``np.frombuffer`` over an ``mmap.mmap``: unlike ``np.memmap`` it does not carry the file name).
Every array a view returns is read-only.

Sampling is :mod:`dcsbench.data.sampler` (the one sampler, shared with ``as_torch`` and the
baselines), here a vectorised numpy gather: a stacked observation of ``o_t`` is frames
``t-2, t-1, t`` of the same trajectory concatenated on channels (oldest first), with the first
frame repeated at the episode start; ``o_{t+k}`` never crosses the episode end.
"""

from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np

from dcsbench import catalogue
from dcsbench.data.sampler import draw, gather_stacks

#: The ``Array*`` names keep the array-backed classes apart from the interfaces they implement,
#: :class:`dcsbench.agent.UnlabeledView` and :class:`dcsbench.agent.LabeledView` (Protocols).
__all__ = ["ArrayUnlabeledView", "ArrayLabeledView", "EvalSplit", "make_views_from_arrays", "readonly_copy"]


def readonly_copy(array: np.ndarray, dtype=None) -> np.ndarray:
    """An immutable C-contiguous copy of ``array`` (backed by ``bytes``: cannot be made writeable)."""
    a = np.ascontiguousarray(array, dtype=dtype)
    return np.frombuffer(a.tobytes(), dtype=a.dtype).reshape(a.shape)


def _readonly(array: np.ndarray) -> np.ndarray:
    """``array`` itself if already read-only, else an immutable copy."""
    if not array.flags.writeable:
        return array
    return readonly_copy(array)


class _FrameView:
    """Frames of some trajectories of one split, with stacked-pair sampling (shared base class).

    Attributes:
        n_trajectories: number of trajectories in the view.
        trajectory_length: number of frames per trajectory (the longest one if lengths differ;
            every dcsbench dataset has equal lengths).
        frame_stack: frames per stacked observation (3).
    """

    __slots__ = ("_frames", "_starts", "_lengths", "_cum", "n_trajectories",
                 "trajectory_length", "frame_stack")

    def __init__(self, frames: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                 frame_stack: int = catalogue.FRAME_STACK) -> None:
        if frames.ndim != 4 or frames.dtype != np.uint8:
            raise ValueError(f"frames must be a (N, H, W, C) uint8 array, got {frames.dtype} {frames.shape}")
        starts = np.asarray(starts, dtype=np.int64)
        lengths = np.asarray(lengths, dtype=np.int64)
        if starts.shape != lengths.shape or starts.ndim != 1 or len(starts) == 0:
            raise ValueError("starts and lengths must be equal-length non-empty 1-d arrays")
        if (lengths < 1).any() or (starts < 0).any() or (starts + lengths > len(frames)).any():
            raise ValueError("trajectory bounds fall outside the frame array")
        self._frames = _readonly(frames)
        self._starts = readonly_copy(starts)
        self._lengths = readonly_copy(lengths)
        self._cum = readonly_copy(np.concatenate([[0], np.cumsum(lengths)]))
        self.n_trajectories = int(len(starts))
        self.trajectory_length = int(lengths.max())
        self.frame_stack = int(frame_stack)

    # ------------------------------------------------------------------ basic access
    @property
    def lengths(self) -> np.ndarray:
        """Length (number of frames) of each trajectory, ``(n_trajectories,)`` int64."""
        return self._lengths

    @property
    def n_frames(self) -> int:
        """Total number of frames in the view."""
        return int(self._cum[-1])

    @property
    def n_transitions(self) -> int:
        """Number of ``(o_t, o_{t+1})`` pairs, i.e. ``sum(T_i - 1)`` (what :meth:`iter_stacks` yields)."""
        return int(self._cum[-1] - self.n_trajectories)

    def __len__(self) -> int:
        return self.n_trajectories

    def _check_index(self, i: int) -> int:
        i = int(i)
        if not 0 <= i < self.n_trajectories:
            raise IndexError(f"trajectory {i} out of range 0..{self.n_trajectories - 1}")
        return i

    def frames(self, i: int) -> np.ndarray:
        """Frames of trajectory ``i``: ``(T, 64, 64, 3)`` uint8, read-only (no copy)."""
        i = self._check_index(i)
        s = int(self._starts[i])
        return self._frames[s:s + int(self._lengths[i])]

    # ------------------------------------------------------------------ sampling
    def _stack(self, traj: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Stacked observations ``(B, H, W, C * frame_stack)`` of steps ``t`` of trajectories ``traj``."""
        return gather_stacks(self._frames, self._starts[traj], t, self.frame_stack)

    def sample(self, batch_size: int, rng: np.random.Generator, max_offset: int = 1,
               offset: int | None = None) -> dict[str, np.ndarray]:
        """A random batch of stacked pairs ``(o_t, o_{t+k})``.

        Args:
            batch_size: number of pairs B.
            rng: numpy random generator (the only source of randomness: same state, same batch).
            max_offset: ``k`` is drawn uniformly in ``1..max_offset`` per pair.
            offset: if given, every pair uses this fixed ``k`` instead.

        Returns:
            ``{"obs": (B,64,64,9) uint8, "next_obs": (B,64,64,9) uint8, "offset": (B,) int64}``
            (a :class:`ArrayLabeledView` adds ``"action": (B, A) float32`` = ``a_t``). ``t + k`` never
            goes past the last frame of the trajectory.
        """
        traj, t, k = draw(self._cum, self._lengths, batch_size, rng, max_offset, offset)
        batch = {"obs": self._stack(traj, t), "next_obs": self._stack(traj, t + k), "offset": k}
        self._add_labels(batch, traj, t)
        return batch

    def _add_labels(self, batch: dict, traj: np.ndarray, t: np.ndarray) -> None:
        """Hook: labeled views add ``action``."""

    def stacks_at(self, traj, t, offset: int = 1) -> dict[str, np.ndarray]:
        """Stacked pairs ``(o_t, o_{t+offset})`` at given positions (no randomness).

        Args:
            traj: view trajectory indices ``(B,)``.
            t: steps ``(B,)`` with ``t + offset <= T_traj - 1``.
            offset: the frame gap ``k``.

        Returns:
            ``{"obs", "next_obs"}`` ``(B, 64, 64, 9)`` uint8 (plus ``"action"`` = ``a_t`` on a
            labeled view).
        """
        traj = np.asarray(traj, dtype=np.int64).reshape(-1)
        t = np.asarray(t, dtype=np.int64).reshape(-1)
        if traj.shape != t.shape:
            raise ValueError(f"traj {traj.shape} and t {t.shape} differ in shape")
        if len(traj) and ((traj < 0).any() or (traj >= self.n_trajectories).any()):
            raise IndexError(f"trajectory index out of range 0..{self.n_trajectories - 1}")
        if len(t) and ((t < 0).any() or (t + offset > self._lengths[traj] - 1).any()):
            raise IndexError(f"step out of range: t + {offset} must be <= T - 1")
        batch = {"obs": self._stack(traj, t), "next_obs": self._stack(traj, t + offset)}
        self._add_labels(batch, traj, t)
        return batch

    def iter_stacks(self, batch_size: int) -> Iterator[dict[str, np.ndarray]]:
        """Every ``(o_t, o_{t+1})`` pair (``t = 0..T-2`` of every trajectory, in order), in batches.

        Yields dicts with ``obs``, ``next_obs`` (``(b, 64, 64, 9)`` uint8), ``index``
        (``(b, 2)`` int64 rows ``(trajectory, t)``) and, on a labeled view, ``action`` (``a_t``).
        Batches run across trajectory boundaries; the last one may be smaller.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        per_traj = self._lengths - 1
        cum = np.concatenate([[0], np.cumsum(per_traj)])
        total = int(cum[-1])
        for s in range(0, total, batch_size):
            p = np.arange(s, min(s + batch_size, total), dtype=np.int64)
            traj = np.searchsorted(cum, p, side="right") - 1
            t = p - cum[traj]
            batch = {"obs": self._stack(traj, t), "next_obs": self._stack(traj, t + 1),
                     "index": np.stack([traj, t], axis=1)}
            self._add_labels(batch, traj, t)
            yield batch

    def as_torch(self, device: str = "cuda"):
        """A device-resident sampler over this view (:class:`dcsbench.data.sampler.TorchSampler`).

        Copies the frames (and actions) this view can see to ``device`` once; ``sample`` then
        returns torch tensors gathered on the device. Needs ``n_frames * 12288`` bytes there.
        """
        from dcsbench.data.sampler import TorchSampler
        return TorchSampler(self, device)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n_trajectories={self.n_trajectories}, "
                f"trajectory_length={self.trajectory_length})")


class ArrayUnlabeledView(_FrameView):
    """Observations of the ``train`` trajectories and nothing else (implements
    :class:`dcsbench.agent.UnlabeledView`)."""

    __slots__ = ()


class ArrayLabeledView(_FrameView):
    """Observations and actions of one budget's labeled trajectories (implements
    :class:`dcsbench.agent.LabeledView`).

    Trajectory ``i`` of this view is ``train`` trajectory ``trajectory_ids[i]``.
    """

    __slots__ = ("_actions", "_action_starts", "trajectory_ids")

    def __init__(self, frames: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                 actions: np.ndarray, trajectory_ids: Sequence[int],
                 frame_stack: int = catalogue.FRAME_STACK) -> None:
        """``actions``: the labeled trajectories' actions back to back, ``(sum(lengths), A)``."""
        super().__init__(frames, starts, lengths, frame_stack)
        actions = np.asarray(actions)
        if actions.ndim != 2 or len(actions) != int(self._cum[-1]):
            raise ValueError(f"actions must be ({int(self._cum[-1])}, A), got {actions.shape}")
        if len(trajectory_ids) != self.n_trajectories:
            raise ValueError("one trajectory id per labeled trajectory is required")
        self._actions = readonly_copy(actions, dtype=np.float32)
        self._action_starts = self._cum[:-1]
        self.trajectory_ids = tuple(int(i) for i in trajectory_ids)

    @property
    def action_dim(self) -> int:
        """Dimension of the action vector."""
        return int(self._actions.shape[1])

    def actions(self, i: int) -> np.ndarray:
        """Actions of labeled trajectory ``i``: ``(T, action_dim)`` float32, read-only
        (``actions(i)[t]`` is the action taken after seeing frame ``t``)."""
        i = self._check_index(i)
        s = int(self._action_starts[i])
        return self._actions[s:s + int(self._lengths[i])]

    def _add_labels(self, batch: dict, traj: np.ndarray, t: np.ndarray) -> None:
        batch["action"] = self._actions[self._action_starts[traj] + t]


class EvalSplit(ArrayLabeledView):
    """Frames and actions of the ``eval`` trajectories (novel backgrounds). Harness only: never
    handed to an agent. ``trajectory_ids`` are eval-split indices; ``seeds`` their episode seeds."""

    __slots__ = ("seeds",)

    def __init__(self, frames: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                 actions: np.ndarray, seeds: Sequence[int] | None = None,
                 frame_stack: int = catalogue.FRAME_STACK) -> None:
        super().__init__(frames, starts, lengths, actions, list(range(len(starts))), frame_stack)
        self.seeds = tuple(int(s) for s in seeds) if seeds is not None else None


def _pack(frames: Sequence[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenate per-trajectory frame arrays into one immutable store + (starts, lengths)."""
    if len(frames) == 0:
        raise ValueError("need at least one trajectory")
    shapes = {tuple(np.shape(f)[1:]) for f in frames}
    if len(shapes) != 1:
        raise ValueError(f"all trajectories need the same frame shape, got {sorted(shapes)}")
    lengths = np.array([len(f) for f in frames], dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    store = readonly_copy(np.concatenate([np.asarray(f, dtype=np.uint8) for f in frames]))
    return store, starts, lengths


def make_views_from_arrays(frames: list[np.ndarray], actions: list[np.ndarray],
                           labeled_ids: list[int]) -> tuple[ArrayUnlabeledView, ArrayLabeledView]:
    """In-memory views for tests and notebooks.

    Args:
        frames: one ``(T_i, 64, 64, 3)`` uint8 array per train trajectory.
        actions: one ``(T_i, A)`` float array per train trajectory (only the labeled ones are kept).
        labeled_ids: indices of the labeled trajectories (order is kept: labeled trajectory ``j``
            is ``frames[labeled_ids[j]]``).

    Returns:
        ``(unlabeled, labeled)``: the unlabeled view holds copies of the frames only; the labeled
        view shares those frames and holds a copy of the labeled trajectories' actions only.
    """
    if len(actions) != len(frames):
        raise ValueError(f"{len(frames)} frame arrays but {len(actions)} action arrays")
    store, starts, lengths = _pack(frames)
    ids = [int(i) for i in labeled_ids]
    if not ids:
        raise ValueError("labeled_ids is empty")
    if len(set(ids)) != len(ids) or not all(0 <= i < len(frames) for i in ids):
        raise ValueError(f"labeled_ids must be distinct indices in 0..{len(frames) - 1}")
    for i in ids:
        if len(actions[i]) != lengths[i]:
            raise ValueError(f"trajectory {i}: {lengths[i]} frames but {len(actions[i])} actions")
    unlabeled = ArrayUnlabeledView(store, starts, lengths)
    labeled = ArrayLabeledView(store, starts[ids], lengths[ids],
                          np.concatenate([np.asarray(actions[i], dtype=np.float32) for i in ids]), ids)
    return unlabeled, labeled
