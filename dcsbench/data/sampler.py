"""The one batch sampler of stacked pairs: ``(o_t, o_{t+1}, o_{t+k}, k[, a_t])`` from a view.

Every batch in dcsbench is drawn and gathered here:

* :func:`draw` - random positions ``(traj, t, k)``: ``k`` uniform in ``1..max_offset`` (or a fixed
  ``offset``), trajectories chosen in proportion to their length, ``t + k <= T_traj - 1``. With a
  numpy ``Generator`` it returns numpy arrays (the stream of the views' ``sample``); with a
  ``torch.Generator`` (or None) it draws on the device of the given tensors.
* :func:`gather_stacks` - stacked observations at steps ``t``: frames ``t-2, t-1, t`` of the same
  trajectory concatenated on channels (oldest first), the first frame repeated at the episode
  start; a numpy store is gathered on the host, a torch store on its device.
* :class:`Sampler` - batches over a view as torch tensors on a device, gathered on the host
  (pinned on CUDA) or from a copy of the view's frames on the device. The baselines use it
  through ``baselines.common.TransitionSampler`` (the runtime's device policy).
* :class:`TorchSampler` - the Sampler behind ``view.as_torch(device)``, with the views'
  ``sample`` signature and keys (``next_obs`` is ``o_{t+k}`` there)::

      sampler = unlabeled.as_torch("cuda")
      batch = sampler.sample(512, generator=torch.Generator("cuda").manual_seed(0), max_offset=10)
      batch["obs"]  # (512, 64, 64, 9) uint8 tensor on cuda

The views' own numpy ``sample``, ``stacks_at`` and ``iter_stacks`` are :func:`draw` and
:func:`gather_stacks` over their frame store (torch is not imported for them).

Memory on the device: 12,288 bytes per frame (the full tier, 5M frames, needs ~61 GB: use a
large-memory GPU or gather on the host).
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Iterable, Iterator

import numpy as np

__all__ = ["KEYS", "Sampler", "TorchSampler", "draw", "gather_stacks"]

#: Frames copied to the device per step while building an on-device :class:`Sampler` (~400 MB).
UPLOAD_CHUNK = 32768

#: Batch keys of :meth:`Sampler.sample`: ``o_t``, ``o_{t+1}``, ``o_{t+k}``, ``a_t``, ``k``.
KEYS = ("obs", "next_obs", "future_obs", "action", "offset")


def draw(cum, lengths, batch_size: int, rng, max_offset: int = 1, offset: int | None = None):
    """Random ``(traj, t, k)`` with ``t + k <= T_traj - 1``; every frame equally likely.

    Args:
        cum: ``(n_traj + 1,)`` cumulative trajectory lengths starting at 0.
        lengths: ``(n_traj,)`` trajectory lengths.
        batch_size: number of positions B.
        rng: a numpy ``Generator`` (``cum``/``lengths`` numpy; numpy int64 results) or a
            ``torch.Generator`` / None (``cum``/``lengths`` tensors; results on their device).
        max_offset: ``k`` uniform in ``1..max_offset``.
        offset: a fixed ``k`` instead.

    Draw order (the stream): ``k`` (unless fixed), then the frame position, then a uniform for
    ``t``.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    name, kmax = ("offset", offset) if offset is not None else ("max_offset", max_offset)
    if kmax < 1:
        raise ValueError(f"{name} must be >= 1, got {kmax}")
    kmax = int(kmax)
    numpy = isinstance(rng, np.random.Generator)
    if numpy:
        k = (np.full(batch_size, kmax, dtype=np.int64) if offset is not None
             else rng.integers(1, kmax + 1, size=batch_size, dtype=np.int64))
    else:
        import torch

        dev = cum.device
        k = (torch.full((batch_size,), kmax, dtype=torch.int64, device=dev) if offset is not None
             else torch.randint(1, kmax + 1, (batch_size,), generator=rng, device=dev))
    shortest = int(lengths.min())
    if shortest <= kmax:
        raise ValueError(f"offset {kmax} needs trajectories longer than {kmax} frames; "
                         f"shortest has {shortest}")
    total = int(cum[-1])
    if numpy:
        traj = np.searchsorted(cum, rng.integers(0, total, size=batch_size), side="right") - 1
        t = (rng.random(batch_size) * (lengths[traj] - k)).astype(np.int64)
    else:
        pos = torch.randint(0, total, (batch_size,), generator=rng, device=dev)
        traj = torch.searchsorted(cum, pos, right=True) - 1
        t = (torch.rand(batch_size, generator=rng, device=dev) * (lengths[traj] - k)).long()
    return traj, t, k


def gather_stacks(frames, first, t, frame_stack: int):
    """Stacked observations ``(B, H, W, C * frame_stack)`` uint8 at steps ``t``.

    Args:
        frames: the frame store ``(N, H, W, C)``: a numpy array (gathered on the host) or a torch
            tensor (gathered on its device).
        first: ``(B,)`` store row of frame 0 of each sample's trajectory.
        t: ``(B,)`` steps within the trajectories (same kind as ``first``).
        frame_stack: frames per observation; frames before 0 repeat frame 0.
    """
    rows = [first + (t - (frame_stack - 1 - j)).clip(0) for j in range(frame_stack)]  # oldest first
    if not isinstance(frames, np.ndarray):
        import torch

        return torch.cat([frames[r] for r in rows], dim=-1)
    n, h, w, c = frames.shape
    # Copy whole pixels (C bytes as one void item): ~2x faster than a 3-byte-strided uint8 copy.
    pix = np.dtype((np.void, c))
    px = frames.view(pix).reshape(n, h, w)
    out = np.empty((len(t), h, w, frame_stack), dtype=pix)
    for j, r in enumerate(rows):
        out[..., j] = px[r]
    return out.view(np.uint8).reshape(len(t), h, w, c * frame_stack)


def _host_store(view) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(frames, first, lengths)`` of a view: a dcsbench view's own store (no copy), else the
    concatenation of ``view.frames(i)`` (any object with the public view API)."""
    from dcsbench.data.views import _FrameView

    if isinstance(view, _FrameView):
        return view._frames, np.asarray(view._starts), np.asarray(view._lengths)
    parts = [np.asarray(view.frames(i)) for i in range(view.n_trajectories)]
    lengths = np.array([len(p) for p in parts], dtype=np.int64)
    return np.concatenate(parts), np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths


class Sampler:
    """Random batches of stacked observations of a view, as torch tensors on ``device``.

    Args:
        view: a dcsbench view (or any object with ``n_trajectories``, ``frames(i)``, and
            ``actions(i)`` when labeled).
        device: where batches are returned.
        labeled: read the view's actions (``a_t``); None: iff the view has ``actions``.
        on_device: True copies the view's frames (and actions) to ``device`` once and gathers
            there; False gathers on the host (pinned memory for a CUDA device) and copies each
            batch; ``"auto"``: True for a CUDA device when the frames take less than
            ``max_device_bytes``.

    Attributes:
        lengths, cum: trajectory lengths and their cumulative sum from 0 (row ``cum[traj] + t``
            numbers the view's frames back to back), ``n_transitions`` (``sum(T_i - 1)``),
            ``actions`` (host ``(n_frames, A)`` float32 or None), ``on_device``, ``device``.
    """

    def __init__(self, view, device="cpu", labeled: bool | None = None, on_device: bool | str = False,
                 max_device_bytes: float = float("inf")) -> None:
        import torch

        self.device = torch.device(device)
        self.frame_stack = int(getattr(view, "frame_stack", 3))
        frames, first, lengths = _host_store(view)
        self.lengths = np.array(lengths, dtype=np.int64)
        self.cum = np.concatenate([[0], np.cumsum(self.lengths)])
        self.n_transitions = int((self.lengths - 1).sum())
        if labeled is None:
            labeled = hasattr(view, "actions")
        self.actions = (np.concatenate([np.asarray(view.actions(i), dtype=np.float32)
                                        for i in range(view.n_trajectories)]) if labeled else None)
        if on_device == "auto":
            nbytes = int(self.cum[-1]) * int(np.prod(frames.shape[1:]))
            on_device = self.device.type == "cuda" and nbytes < max_device_bytes
        self.on_device = bool(on_device)
        dev = self.device if self.on_device else torch.device("cpu")
        self._cum_t = torch.from_numpy(self.cum).to(dev)  # for draws with a torch generator
        self._lengths_t = torch.from_numpy(self.lengths).to(dev)
        if self.on_device:  # only the view's own trajectories, back to back: row cum[traj] + t
            rows = np.concatenate([np.arange(s, s + n) for s, n in zip(first, self.lengths)])
            self._frames = torch.empty((len(rows), *frames.shape[1:]), dtype=torch.uint8, device=dev)
            for i in range(0, len(rows), UPLOAD_CHUNK):  # bounded host memory for large views
                chunk = np.ascontiguousarray(frames[rows[i:i + UPLOAD_CHUNK]])
                self._frames[i:i + len(chunk)] = torch.from_numpy(chunk).to(dev)
            self._first = self._cum_t[:-1].contiguous()
            self._actions = torch.from_numpy(self.actions).to(dev) if labeled else None
        else:
            self._frames, self._first, self._actions = frames, first, self.actions

    # ------------------------------------------------------------------ positions -> batch
    def positions(self, n: int, rng, max_offset: int = 1, offset: int | None = None):
        """Random ``(traj, t, k)`` (:func:`draw`): numpy arrays for a numpy ``Generator``; for a
        ``torch.Generator`` or None, tensors drawn where the frames are (numpy if on the host)."""
        if isinstance(rng, np.random.Generator):
            return draw(self.cum, self.lengths, n, rng, max_offset, offset)
        out = draw(self._cum_t, self._lengths_t, n, rng, max_offset, offset)
        return out if self.on_device else tuple(x.numpy() for x in out)

    def sample_at(self, traj, t, k, keys: Iterable[str] = ("obs", "next_obs"),
                  to_device: bool = True) -> dict[str, Any]:
        """The batch of :meth:`sample` at given ``(traj, t, k)`` (numpy, or tensors on the device).

        With ``to_device=False`` host-gathered tensors stay on the host (pinned for a CUDA
        device): see :meth:`to_device`.
        """
        import torch

        keys = tuple(keys)
        unknown = [key for key in keys if key not in KEYS]
        if unknown:
            raise ValueError(f"unknown batch keys {unknown}; valid: {', '.join(KEYS)}")
        if "action" in keys and self.actions is None:
            raise ValueError("batch key 'action' needs a sampler built with labeled=True")
        numpy = isinstance(traj, np.ndarray)
        out: dict[str, Any] = {"index": np.stack([traj, t], 1) if numpy else torch.stack([traj, t], 1)}
        if self.on_device and numpy:
            traj, t, k = (torch.from_numpy(np.asarray(x, dtype=np.int64)).to(self.device, non_blocking=True)
                          for x in (traj, t, k))
        steps = {"obs": t, "next_obs": t + 1, "future_obs": t + k}
        first = self._first[traj]
        pin = not self.on_device and self.device.type == "cuda"
        for key in keys:
            if key in steps:
                x = gather_stacks(self._frames, first, steps[key], self.frame_stack)
                if not self.on_device:
                    x = torch.from_numpy(x)
                    x = x.pin_memory() if pin else x
                out[key] = x
        if "action" in keys:
            if self.on_device:  # device rows are the view's frames back to back: first = cum[traj]
                out["action"] = self._actions[first + t]
            else:
                out["action"] = torch.from_numpy(self._actions[self.cum[traj] + t])
        if "offset" in keys:
            out["offset"] = torch.from_numpy(k) if isinstance(k, np.ndarray) else k
        return self.to_device(out) if to_device else out

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Move a batch's tensors to :attr:`device` (non-blocking)."""
        import torch

        dev = self.device
        return {k: v.to(dev, non_blocking=True) if torch.is_tensor(v) else v for k, v in batch.items()}

    def stacks(self, traj, t):
        """uint8 ``(B, 64, 64, 3 * frame_stack)`` stacks of steps ``t`` of trajectories ``traj``, on the device."""
        return self.sample_at(traj, t, t, ("obs",))["obs"]

    # ------------------------------------------------------------------ random batches
    def sample(self, n: int, rng=None, max_offset: int = 1, keys: Iterable[str] = ("obs", "next_obs"),
               to_device: bool = True, *, offset: int | None = None) -> dict[str, Any]:
        """A random batch with the requested ``keys`` among ``obs`` (o_t), ``next_obs`` (o_{t+1}),
        ``future_obs`` (o_{t+k}), ``action`` (a_t, labeled only), ``offset`` (k), plus ``index``
        = ``(traj, t)`` (numpy for a numpy ``rng``). Image stacks are uint8 ``(B, 64, 64, 9)``
        tensors on the device; ``k`` is uniform in ``1..max_offset`` (or the fixed ``offset``)."""
        traj, t, k = self.positions(n, rng, max_offset, offset)
        return self.sample_at(traj, t, k, keys, to_device)

    def stream(self, n: int, rng: np.random.Generator, max_offset: int = 1,
               keys: Iterable[str] = ("obs", "next_obs"), prefetch: bool | None = None) -> Iterator[dict]:
        """Endless batches of :meth:`sample` drawn with a child generator of ``rng``.

        ``prefetch`` (default: when frames are gathered on the host for a CUDA device) gathers
        the next batches in a background thread so that the GPU does not wait for the host. The
        batches are the same with and without prefetching (one producer, its own generator).
        """
        child = np.random.default_rng(int(rng.integers(2**63)))
        keys = tuple(keys)
        if prefetch is None:
            prefetch = self.device.type == "cuda" and not self.on_device
        if not prefetch:
            while True:
                yield Sampler.sample(self, n, child, max_offset, keys)
        q: queue.Queue = queue.Queue(maxsize=3)
        stop = threading.Event()

        def produce() -> None:
            try:
                while not stop.is_set():
                    item = Sampler.sample(self, n, child, max_offset, keys, to_device=False)
                    while not stop.is_set():
                        try:
                            q.put(item, timeout=0.1)
                            break
                        except queue.Full:
                            continue
            except BaseException as err:  # noqa: BLE001 - re-raised in the consumer
                q.put(err)

        thread = threading.Thread(target=produce, daemon=True, name="batch-prefetch")
        thread.start()
        try:
            while True:
                item = q.get()
                if isinstance(item, BaseException):
                    raise item
                yield self.to_device(item)
        finally:
            stop.set()


class TorchSampler(Sampler):
    """``view.as_torch(device)``: the view's frames (and actions, if labeled) copied to ``device``
    once, sampled there with the views' ``sample`` signature and keys."""

    def __init__(self, view, device="cuda") -> None:
        super().__init__(view, device, labeled=None, on_device=True)

    def sample(self, batch_size: int, generator=None, max_offset: int = 1,  # type: ignore[override]
               offset: int | None = None) -> dict:
        """A batch ``{"obs", "next_obs", "offset"[, "action"]}`` of tensors on :attr:`device`
        (``next_obs`` is ``o_{t+k}``, as the views' ``sample``).

        Args:
            batch_size: number of pairs.
            generator: a ``torch.Generator`` on the same device (for reproducibility), or None.
            max_offset: ``k`` uniform in ``1..max_offset``.
            offset: fixed ``k`` (overrides ``max_offset``).
        """
        keys = ("obs", "future_obs", "offset") + (("action",) if self.actions is not None else ())
        b = Sampler.sample(self, batch_size, generator, max_offset, keys, offset=offset)
        batch = {"obs": b["obs"], "next_obs": b["future_obs"], "offset": b["offset"]}
        if "action" in b:
            batch["action"] = b["action"]
        return batch
