"""Config of the baselines: :func:`from_dict` builds a (nested) config dataclass from a plain dict,
rejecting unknown keys with the list of valid ones; :class:`ActorStage` / :class:`DecoderStage`
are the stage configs shared by several methods; :class:`RuntimeConfig` says where and how to run.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from typing import Any

from dcsbench.catalogue import check_choice


@dataclass
class ActorStage:
    """A behaviour-cloning stage: ResNet actor regressing targets from ``o_t``.

    ``updates > 0`` fixes the number of updates; otherwise ``epochs`` (over the unlabeled view's
    transitions) sets it. ``warmup_epochs`` is measured the same way (0: no warmup).
    """

    encoder_scale: int = 32
    batch_size: int = 512
    lr: float = 1e-4
    weight_decay: float = 0.0
    epochs: float = 10.0
    updates: int = 0
    warmup_epochs: float = 0.0


@dataclass
class DecoderStage:
    """Stage 3 of the LAM methods: MLP latent -> action on the labeled view, actor frozen."""

    hidden_dim: int = 256
    batch_size: int = 512
    lr: float = 3e-4
    updates: int = 2500


@dataclass
class RuntimeConfig:
    """Where and how to run: ``device`` ``"auto"`` picks CUDA when available; ``bf16`` autocast
    applies on CUDA only; ``data_on_device`` ``"auto"`` copies the frames to the GPU when they take
    less than ``data_on_device_max_gb``."""

    device: str = "auto"
    bf16: bool = True
    compile: bool = False
    channels_last: bool = True
    data_on_device: str = "auto"
    data_on_device_max_gb: float = 40.0
    log_every: int = 100


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Light type check/coercion of one config value against a dataclass field type."""
    if isinstance(tp, str):
        tp = {"int": int, "float": float, "bool": bool, "str": str}.get(tp, Any)
    origin = typing.get_origin(tp)
    if tp in (int, float) and isinstance(value, str):  # YAML 1.1 reads "3e-4" as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"config {where}: expected true/false, got {value!r}")
    elif tp is int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
            raise ValueError(f"config {where}: expected an integer, got {value!r}")
        value = int(value)
    elif tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"config {where}: expected a number, got {value!r}")
        value = float(value)
    elif tp is str:
        if isinstance(value, bool):  # YAML reads true/false unquoted
            value = "true" if value else "false"
        if not isinstance(value, str):
            raise ValueError(f"config {where}: expected a string, got {value!r}")
    elif (tp is dict or origin is dict) and not isinstance(value, dict):
        raise ValueError(f"config {where}: expected a mapping, got {value!r}")
    return value


def from_dict(cls: type, data: dict | None, where: str = "") -> Any:
    """Build dataclass ``cls`` from ``data`` (nested dicts for nested dataclasses).

    Missing keys keep their defaults; unknown keys raise ``ValueError`` listing the valid keys.
    """
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    kwargs = {}
    valid = [f.name for f in dataclasses.fields(cls)]
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        try:
            check_choice("config key", key, valid)
        except ValueError as err:
            raise ValueError(f"{err} (in {where or 'top level'})") from None
        tp = hints[key]
        if dataclasses.is_dataclass(tp):
            if not isinstance(value, dict):
                raise ValueError(f"config {path}: expected a mapping, got {value!r}")
            kwargs[key] = from_dict(tp, value, path)
        else:
            kwargs[key] = _coerce(value, tp, path)
    return cls(**kwargs)
