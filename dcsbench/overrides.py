"""One reader for every ``--set KEY=VALUE`` option of dcsbench.

Three commands take ``KEY=VALUE`` overrides: ``dcsbench evaluate``/``sweep`` (agent and Slurm
options), the baselines' ``load_config`` and ``dcsbench train-expert``. They all read values
here, so ``1e-4`` means the same number everywhere.

Values are read as JSON first (numbers including ``1e-4``, ``true``/``false``, ``null``, lists,
objects), then as a YAML scalar or flow collection (``{width: 256}``, ``[a, b]``), and otherwise
kept as the plain string. Nothing is executed: JSON and ``yaml.safe_load`` only build data.
PyYAML alone would read ``1e-4`` as the string ``"1e-4"`` (YAML 1.1 wants ``1.0e-4``), which is
why JSON goes first.
"""

from __future__ import annotations

import json
from typing import Any, Iterable


def parse_value(raw: str) -> Any:
    """The value of one ``--set`` option: JSON, else YAML, else the string itself."""
    text = raw.strip()
    if not text:
        return ""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        pass
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def split_assignment(item: str) -> tuple[str, Any]:
    """``"lam.lr=1e-4"`` -> ``("lam.lr", 0.0001)``; raises ``ValueError`` without a key or ``=``."""
    key, sep, raw = str(item).partition("=")
    key = key.strip()
    if not sep or not key:
        raise ValueError(f"--set expects KEY=VALUE, got {item!r}")
    return key, parse_value(raw)


def set_dotted(tree: dict, key: str, value: Any) -> None:
    """Set ``tree["a"]["b"] = value`` for ``key="a.b"``, creating the sections on the way."""
    node = tree
    *parents, leaf = key.split(".")
    for p in parents:
        node = node.setdefault(p, {})
        if not isinstance(node, dict):
            raise ValueError(f"--set {key!r}: {p!r} is both a value and a section")
    node[leaf] = value


def nested_overrides(items: Iterable[str] | None) -> dict[str, Any]:
    """``["lr=1e-4", "net.width=256"]`` -> ``{"lr": 0.0001, "net": {"width": 256}}``."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, value = split_assignment(item)
        set_dotted(out, key, value)
    return out


__all__ = ["nested_overrides", "parse_value", "set_dotted", "split_assignment"]


def deep_merge(base: dict, extra: dict) -> dict:
    """A copy of ``base`` with ``extra`` merged in, recursively for nested mappings (``extra``
    wins). The one deep merge of configurations in dcsbench and the baselines."""
    import copy

    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) \
            else copy.deepcopy(v)
    return out
