"""GPU-resident batch sampling (optional): the same batches as a view's ``sample``, as torch tensors.

The numpy sampler of :mod:`dcsbench.data.views` gathers from a memory map on the CPU; on a GPU
the host->device copy of every batch (~12 MB at batch 512) then dominates. :class:`TorchSampler`
copies what a view can see to the device once and gathers there::

    sampler = unlabeled.as_torch("cuda")
    batch = sampler.sample(512, generator=torch.Generator("cuda").manual_seed(0), max_offset=10)
    batch["obs"]  # (512, 64, 64, 9) uint8 tensor on cuda

Memory: 12,288 bytes per frame (the full tier, 5M frames, needs ~61 GB: use a large-memory GPU
or the numpy sampler).
"""

from __future__ import annotations

import numpy as np

#: Frames copied to the device per step while building a :class:`TorchSampler` (~400 MB).
UPLOAD_CHUNK = 32768


class TorchSampler:
    """Samples stacked ``(o_t, o_{t+k})`` pairs (and ``a_t`` for labeled views) on a torch device.

    Semantics are those of :meth:`dcsbench.data.views.UnlabeledView.sample`: ``k`` uniform in
    ``1..max_offset`` (or a fixed ``offset``), trajectories chosen in proportion to their length,
    never crossing an episode end, first frame repeated at the episode start.
    """

    __slots__ = ("device", "_frames", "_starts", "_lengths", "_cum", "_actions", "frame_stack")

    def __init__(self, view, device: str = "cuda") -> None:
        import torch

        self.device = torch.device(device)
        # Copy only what the view itself holds (its own trajectories' frames and, if labeled, actions).
        starts = np.asarray(view._starts)
        lengths = np.asarray(view._lengths)
        idx = np.concatenate([np.arange(s, s + n) for s, n in zip(starts, lengths)])
        frames = view._frames
        self._frames = torch.empty((len(idx), *frames.shape[1:]), dtype=torch.uint8, device=self.device)
        for i in range(0, len(idx), UPLOAD_CHUNK):  # bounded host memory for large views
            chunk = np.ascontiguousarray(frames[idx[i:i + UPLOAD_CHUNK]])
            self._frames[i:i + len(chunk)] = torch.from_numpy(chunk).to(self.device)
        self._lengths = torch.from_numpy(lengths.copy()).to(self.device)
        cum = np.concatenate([[0], np.cumsum(lengths)])
        self._cum = torch.from_numpy(cum).to(self.device)
        self._starts = self._cum[:-1].contiguous()
        actions = getattr(view, "_actions", None)
        self._actions = (torch.from_numpy(np.array(actions, dtype=np.float32)).to(self.device)
                         if actions is not None else None)
        self.frame_stack = int(view.frame_stack)

    def _stack(self, start, t):
        import torch

        parts = [self._frames[start + torch.clamp(t - (self.frame_stack - 1 - j), min=0)]
                 for j in range(self.frame_stack)]
        return torch.cat(parts, dim=-1)

    def sample(self, batch_size: int, generator=None, max_offset: int = 1,
               offset: int | None = None) -> dict:
        """A batch ``{"obs", "next_obs", "offset"[, "action"]}`` of tensors on :attr:`device`.

        Args:
            batch_size: number of pairs.
            generator: a ``torch.Generator`` on the same device (for reproducibility), or None.
            max_offset: ``k`` uniform in ``1..max_offset``.
            offset: fixed ``k`` (overrides ``max_offset``).
        """
        import torch

        dev = self.device
        kmax = int(offset) if offset is not None else int(max_offset)
        if kmax < 1 or batch_size < 1:
            raise ValueError("batch_size and offset must be >= 1")
        if int(self._lengths.min()) <= kmax:
            raise ValueError(f"offset {kmax} needs trajectories longer than {kmax} frames")
        if offset is not None:
            k = torch.full((batch_size,), kmax, dtype=torch.int64, device=dev)
        else:
            k = torch.randint(1, kmax + 1, (batch_size,), generator=generator, device=dev)
        pos = torch.randint(0, int(self._cum[-1]), (batch_size,), generator=generator, device=dev)
        traj = torch.searchsorted(self._cum, pos, right=True) - 1
        u = torch.rand(batch_size, generator=generator, device=dev)
        t = (u * (self._lengths[traj] - k)).long()
        start = self._starts[traj]
        batch = {"obs": self._stack(start, t), "next_obs": self._stack(start, t + k), "offset": k}
        if self._actions is not None:
            batch["action"] = self._actions[start + t]
        return batch
