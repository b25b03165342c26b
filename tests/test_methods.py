"""The method registry (dcsbench.methods): entry points, runtime registration, MODULE:CLASS."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import trivial_agents as ta

from dcsbench import methods


def test_the_baselines_are_registered_through_entry_points():
    assert {"bc", "idm", "lapo", "laom", "laom-sup"} <= set(methods.names())
    cls = methods.resolve("laom-sup")
    assert cls.__name__ == "LAOMSupAgent" and cls.name == "laom-sup"


def test_runtime_registration_and_module_class_specs(monkeypatch):
    monkeypatch.setattr(methods, "_RUNTIME", {})
    methods.register("constant-zero", "trivial_agents:ConstantAgent")

    @methods.register("mean")
    class Mean(ta.MeanAction):
        name = "mean"

    assert methods.resolve("constant-zero") is ta.ConstantAgent and methods.resolve("mean") is Mean
    agent = methods.make_agent("constant-zero", overrides=["value=0.5"])
    assert isinstance(agent, ta.ConstantAgent) and agent.config == {"value": 0.5}
    assert methods.resolve("trivial_agents:RandomAgent") is ta.RandomAgent


def test_unknown_names_and_presets_are_clear_errors():
    with pytest.raises(ValueError, match="Valid methods: .*laom"):
        methods.resolve("laomm")
    with pytest.raises(ValueError, match="has no presets"):
        methods.make_agent("trivial_agents:ConstantAgent", preset="tiny")
    with pytest.raises(ValueError, match="not a dcsbench.agent.Agent"):
        methods.resolve("trivial_agents:np")


def test_the_runner_never_imports_the_baselines():
    code = ("import sys; import dcsbench.protocol, dcsbench.methods as m; "
            "m.make_agent('trivial_agents:ConstantAgent'); "
            "print('baselines' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=Path(__file__).parent, check=True).stdout.strip()
    assert out == "False"
