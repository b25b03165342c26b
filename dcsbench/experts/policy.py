"""Expert policies as plain arrays: a normalised-state MLP that runs on numpy alone.

File format (``{task}.safetensors``, tensors only, nothing executable):

* ``obs_mean``, ``obs_var`` (float64, ``(S,)``): running observation statistics of training;
  the network sees ``clip((s - mean) / sqrt(var + eps), -obs_clip, obs_clip)``.
* ``layers.{i}.weight`` (float32, ``(out, in)``) and ``layers.{i}.bias``: the MLP, hidden layers
  followed by ``activation``, the last layer is the Gaussian *mean* action (no activation).
* metadata: ``format`` (``dcsbench-expert-v1``), ``task``, ``activation``, ``obs_clip``,
  ``obs_epsilon``, ``output``.

The action is the mean clipped to ``[-1, 1]`` (``output="clip"``: what stable-baselines3's
deterministic ``predict`` does for PPO's Gaussian policy) or squashed by ``tanh``
(``output="tanh"``: SAC's squashed Gaussian), returned as float32.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

FORMAT = "dcsbench-expert-v1"
_ACTIVATIONS = {"tanh": np.tanh, "relu": lambda x: np.maximum(x, 0.0)}


class ExpertPolicy:
    """Deterministic state -> action policy. Call with a state ``(S,)`` or a batch ``(B, S)``.

    Attributes:
        task: task the expert was trained on.
        state_dim, action_dim: input and output sizes.
        metadata: the string metadata stored in the file.
    """

    def __init__(self, task: str, obs_mean: np.ndarray, obs_var: np.ndarray,
                 weights: list[np.ndarray], biases: list[np.ndarray], activation: str = "tanh",
                 obs_clip: float = 10.0, obs_epsilon: float = 1e-8, metadata: dict | None = None,
                 output: str = "clip"):
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; valid: {sorted(_ACTIVATIONS)}")
        if output not in ("clip", "tanh"):
            raise ValueError(f"unknown output {output!r}; valid: clip, tanh")
        if len(weights) != len(biases) or not weights:
            raise ValueError("need one bias per weight matrix and at least one layer")
        self.task = task
        self.obs_mean = np.asarray(obs_mean, dtype=np.float64)
        self.obs_var = np.asarray(obs_var, dtype=np.float64)
        self.weights = [np.ascontiguousarray(w, dtype=np.float32) for w in weights]
        self.biases = [np.asarray(b, dtype=np.float32) for b in biases]
        self.activation = activation
        self.output = output
        self.obs_clip = float(obs_clip)
        self.obs_epsilon = float(obs_epsilon)
        self.metadata = dict(metadata or {})
        self.state_dim = int(self.obs_mean.shape[0])
        self.action_dim = int(self.weights[-1].shape[0])
        if self.weights[0].shape[1] != self.state_dim:
            raise ValueError(f"first layer expects {self.weights[0].shape[1]} inputs, "
                             f"normalisation has {self.state_dim}")

    def normalize(self, state: np.ndarray) -> np.ndarray:
        """The network input for ``state``: normalised and clipped, as float32."""
        x = (np.asarray(state, dtype=np.float64) - self.obs_mean) / np.sqrt(self.obs_var + self.obs_epsilon)
        return np.clip(x, -self.obs_clip, self.obs_clip).astype(np.float32)

    def __call__(self, state: np.ndarray) -> np.ndarray:
        """Deterministic action(s) in ``[-1, 1]``, float32, shape ``(A,)`` or ``(B, A)``."""
        state = np.asarray(state)
        if state.shape[-1] != self.state_dim or state.ndim not in (1, 2):
            raise ValueError(f"expected a state of shape ({self.state_dim},) or (B, {self.state_dim}), "
                             f"got {state.shape}")
        x = self.normalize(state)
        act = _ACTIVATIONS[self.activation]
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            x = x @ w.T + b
            if i < len(self.weights) - 1:
                x = act(x)
        x = np.tanh(x) if self.output == "tanh" else x
        return np.clip(x, -1.0, 1.0).astype(np.float32)

    # ---------------------------------------------------------------- file IO
    def save(self, path: str | os.PathLike) -> Path:
        """Write the policy to a ``.safetensors`` file atomically."""
        from safetensors.numpy import save_file

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tensors = {"obs_mean": self.obs_mean, "obs_var": self.obs_var}
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            tensors[f"layers.{i}.weight"] = w
            tensors[f"layers.{i}.bias"] = b
        meta = {**{k: str(v) for k, v in self.metadata.items()}, "format": FORMAT,
                "task": self.task, "activation": self.activation,
                "obs_clip": repr(self.obs_clip), "obs_epsilon": repr(self.obs_epsilon),
                "output": self.output}
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata=meta)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ExpertPolicy":
        """Read a policy written by :meth:`save` (tensors and string metadata only)."""
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
        if meta.get("format") != FORMAT:
            raise ValueError(f"{path}: not a dcsbench expert file (format {meta.get('format')!r}, "
                             f"expected {FORMAT!r})")
        n = sum(1 for k in tensors if k.endswith(".weight"))
        try:
            weights = [tensors[f"layers.{i}.weight"] for i in range(n)]
            biases = [tensors[f"layers.{i}.bias"] for i in range(n)]
            mean, var = tensors["obs_mean"], tensors["obs_var"]
        except KeyError as err:
            raise ValueError(f"{path}: missing tensor {err}") from None
        extra = {k: v for k, v in meta.items()
                 if k not in ("format", "task", "activation", "obs_clip", "obs_epsilon", "output")}
        return cls(meta["task"], mean, var, weights, biases, activation=meta["activation"],
                   obs_clip=float(meta["obs_clip"]), obs_epsilon=float(meta["obs_epsilon"]),
                   metadata=extra, output=meta.get("output", "clip"))


def from_sb3(model, vec_normalize, task: str) -> ExpertPolicy:
    """Extract the deterministic policy of a stable-baselines3 PPO ``model`` (MLP, separate
    actor network) and the observation statistics of its ``VecNormalize`` wrapper."""
    import torch.nn as nn

    policy = model.policy
    linears = [m for m in policy.mlp_extractor.policy_net if isinstance(m, nn.Linear)]
    acts = {type(m).__name__ for m in policy.mlp_extractor.policy_net if not isinstance(m, nn.Linear)}
    activation = {"Tanh": "tanh", "ReLU": "relu"}.get(acts.pop() if len(acts) == 1 else "", None)
    if activation is None:
        raise ValueError(f"unsupported policy network activations {acts}")
    linears.append(policy.action_net)
    weights = [m.weight.detach().cpu().numpy() for m in linears]
    biases = [m.bias.detach().cpu().numpy() for m in linears]
    rms = vec_normalize.obs_rms
    return ExpertPolicy(task, rms.mean, rms.var, weights, biases, activation=activation,
                        obs_clip=vec_normalize.clip_obs, obs_epsilon=vec_normalize.epsilon)
