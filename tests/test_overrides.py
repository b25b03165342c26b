"""The one ``--set KEY=VALUE`` reader shared by evaluate/sweep, the baselines and train-expert."""

import pytest

import baselines
from dcsbench import overrides, protocol
from dcsbench.experts import train


@pytest.mark.parametrize("raw, value", [
    ("1e-4", 1e-4), ("3.0e-4", 3e-4), ("256", 256), ("true", True), ("null", None),
    ("[64, 64]", [64, 64]), ('{"a": 1}', {"a": 1}), ("{width: 256}", {"width": 256}),
    ("tanh", "tanh"), ("", ""), ("  7 ", 7), ("a: b: c", "a: b: c"),
])
def test_parse_value_json_then_yaml_then_string(raw, value):
    got = overrides.parse_value(raw)
    assert got == value and type(got) is type(value)


def test_nested_overrides_and_errors():
    assert overrides.nested_overrides(["lam.lr=1e-4", "lam.epochs=2", "seed=3"]) == {
        "lam": {"lr": 1e-4, "epochs": 2}, "seed": 3}
    with pytest.raises(ValueError, match="KEY=VALUE"):
        overrides.nested_overrides(["novalue"])
    with pytest.raises(ValueError, match="KEY=VALUE"):
        overrides.nested_overrides(["=3"])
    with pytest.raises(ValueError, match="both a value and a section"):
        overrides.nested_overrides(["a=1", "a.b=2"])


def test_every_set_option_reads_1e_minus_4_as_a_number():
    # PyYAML alone reads 1e-4 as a string; each entry point must give the float.
    assert protocol.parse_overrides(["lr=1e-4"]) == {"lr": 1e-4}
    assert baselines.parse_overrides(["lam.lr=1e-4"]) == {"lam": {"lr": 1e-4}}
    assert train.parse_overrides("sac", ["learning_rate=1e-4"]) == {"learning_rate": 1e-4}
