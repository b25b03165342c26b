"""One method registry: a name (``bc``, ``laom``, ``my-method``) -> an :class:`~dcsbench.agent.Agent`
class, looked up lazily, the lm-evaluation-harness way.

Where entries come from (later wins):

1. the ``dcsbench.methods`` entry-point group of every installed package: the reference
   baselines declare theirs in this repository's ``pyproject.toml``; an outside package
   declares its own the same way::

       [project.entry-points."dcsbench.methods"]
       my-method = "my_package.agent:MyAgent"

2. :func:`register` at run time (a name and a ``"module:Class"`` string or the class itself);
3. no registration at all: ``"module:Class"`` specs resolve directly (the current folder is
   importable, so ``dcsbench run --agent my_method:MyAgent`` finds ``./my_method.py``).

Nothing is imported until a method is used. The runner knows methods only through this module
and :meth:`Agent.from_config` (how a class turns a configuration and a preset into an agent);
it never imports ``baselines``.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

from dcsbench.agent import Agent
from dcsbench.overrides import deep_merge, nested_overrides
from dcsbench.catalogue import check_choice

#: The entry-point group methods are registered under.
ENTRY_POINT_GROUP = "dcsbench.methods"

_RUNTIME: dict[str, str | type] = {}


def register(name: str, target: str | type | None = None):
    """Register method ``name`` as ``target`` (``"module:Class"`` or an Agent subclass).

    Without ``target`` it is a class decorator: ``@register("my-method")``.
    """
    def add(t):
        if not isinstance(t, (str, type)):
            raise TypeError(f"register({name!r}): target must be 'module:Class' or a class")
        _RUNTIME[str(name)] = t
        return t

    return add if target is None else add(target)


def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def available() -> dict[str, str | type]:
    """Every registered method: name -> ``"module:Class"`` (or the class)."""
    return {**_entry_points(), **_RUNTIME}


def names() -> list[str]:
    """Registered method names, sorted."""
    return sorted(available())


def import_agent_class(spec: str) -> type[Agent]:
    """Import ``"package.module:ClassName"`` and check it is an :class:`Agent` subclass (the
    current working directory is importable, as with ``python -m``)."""
    module_name, sep, cls_name = spec.partition(":")
    if not sep or not module_name or not cls_name:
        raise ValueError(f"expected MODULE:CLASS, got {spec!r}")
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        raise ValueError(f"cannot import module {module_name!r} ({err}); is it on PYTHONPATH?") from None
    cls = getattr(module, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise ValueError(f"{spec}: {cls_name!r} is not a dcsbench.agent.Agent subclass in {module_name}")
    return cls


def resolve(spec: str) -> type[Agent]:
    """The Agent class of a registered name or a ``"module:Class"`` spec (unknown names raise,
    listing the registered ones)."""
    if ":" in spec:
        return import_agent_class(spec)
    known = available()
    if not known:
        raise ValueError(f"no method is registered (entry-point group {ENTRY_POINT_GROUP!r} is "
                         "empty): reinstall dcsbench (bash scripts/setup.sh, or pip install -e .)")
    check_choice("method", spec, known)
    target = known[spec]
    cls = import_agent_class(target) if isinstance(target, str) else target
    if not (isinstance(cls, type) and issubclass(cls, Agent)):
        raise ValueError(f"method {spec!r} is registered as {target!r}, not an Agent subclass")
    return cls


def load_config_file(path: str | os.PathLike | None) -> dict[str, Any]:
    """Read a YAML (or JSON) config file that must hold a mapping (``{}`` for ``None``)."""
    import yaml

    if path is None:
        return {}
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a config file must hold a mapping of options, "
                         f"got {type(data).__name__}")
    return data


def make_agent(spec: str, config_file: str | os.PathLike | None = None,
               overrides: list[str] | dict | None = None, preset: str | None = None) -> Agent:
    """Build an agent from a method name or ``MODULE:CLASS``.

    Configuration, later wins: the mapping in ``config_file`` (YAML), then ``overrides``
    (``key=value`` strings or a dict). The class turns it and ``preset`` into an agent with
    :meth:`Agent.from_config` (the baselines: the preset's YAML values under the mapping, and
    without a preset they pick one for the machine and say why; a plain Agent takes the mapping
    as keyword arguments and has no presets).
    """
    config = load_config_file(config_file)
    extra = overrides if isinstance(overrides, dict) else nested_overrides(overrides)
    return resolve(spec).from_config(deep_merge(config, extra), preset)


__all__ = ["ENTRY_POINT_GROUP", "register", "available", "names", "resolve", "make_agent",
           "import_agent_class", "load_config_file"]
