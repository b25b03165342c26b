"""Shared pytest fixtures. Keep this file small: area-specific fixtures live in the test modules."""

from __future__ import annotations

import pytest


class HubEndpoint(str):
    """The endpoint URL of the local test hub (a ``str``), with ``.state`` for inspection and
    fault injection (:class:`tests.hubserver.HubState`) and ``.server``."""

    state: object
    server: object


@pytest.fixture
def hub_server(tmp_path, monkeypatch):
    """A Hub-compatible server on 127.0.0.1 (see tests/hubserver.py); yields its URL.

    Points ``huggingface_hub`` at it (``HF_ENDPOINT``), gives it an empty ``HF_HOME`` under
    ``tmp_path``, turns offline mode off (scripts/test.sh sets ``HF_HUB_OFFLINE=1`` for the rest of
    the suite) and disables Xet so uploads use the plain LFS protocol. The same settings are
    patched into ``huggingface_hub.constants``, which reads the environment only at import.
    """
    from huggingface_hub import constants

    from hubserver import HubServer  # tests/ is on sys.path (pytest rootdir conftest)

    srv = HubServer().start()
    hf_home = tmp_path / "hf_home"
    env = {"HF_ENDPOINT": srv.url, "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"),
           "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1", "HF_HUB_DISABLE_TELEMETRY": "1",
           "HF_TOKEN": "hf_dcsbench_test_token"}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    patches = {"ENDPOINT": srv.url,
               "HUGGINGFACE_CO_URL_TEMPLATE": srv.url + "/{repo_id}/resolve/{revision}/{filename}",
               "HF_HOME": str(hf_home), "HF_HUB_CACHE": str(hf_home / "hub"),
               "HF_HUB_OFFLINE": False, "HF_HUB_DISABLE_XET": True, "HF_HUB_DISABLE_TELEMETRY": True,
               "HF_TOKEN_PATH": str(hf_home / "token"),
               "HF_STORED_TOKENS_PATH": str(hf_home / "stored_tokens")}
    for k, v in patches.items():
        if hasattr(constants, k):
            monkeypatch.setattr(constants, k, v)
    url = HubEndpoint(srv.url)
    url.state, url.server = srv.state, srv
    try:
        yield url
    finally:
        srv.stop()


# --- protocol (tests/test_protocol.py): one tiny dataset built once per session -----------------

@pytest.fixture(scope="session")
def tiny_dataset_root(tmp_path_factory):
    """Cache root holding ``cheetah-run-distractors-tiny`` built by the test itself: random
    policy, 4 train + 2 eval trajectories of 20 steps (non-protocol, ~5 s to build)."""
    from dcsbench.data.build import build_dataset

    root = tmp_path_factory.mktemp("dcsbench_home")
    build_dataset("cheetah-run-distractors-tiny", root=root, policy="random", episode_length=20,
                  n_train=4, n_eval=2, progress=False)
    return root


@pytest.fixture
def tiny_dataset_home(tiny_dataset_root, monkeypatch):
    """Points ``DCSBENCH_HOME`` at :func:`tiny_dataset_root` for one test; returns the root."""
    monkeypatch.setenv("DCSBENCH_HOME", str(tiny_dataset_root))
    return tiny_dataset_root


# --- submissions (tests/test_submissions.py, tests/test_tamper_validator.py) ---------------------

@pytest.fixture
def refs(tmp_path, monkeypatch):
    """Private references for the synthetic datasets of tests/submission_factory.py."""
    import submission_factory as sf

    from dcsbench import scoring

    path = sf.write_references(tmp_path / "references.json")
    monkeypatch.setenv(scoring.REFERENCES_ENV, str(path))
    return path


@pytest.fixture
def known():
    """The known-datasets table of the synthetic datasets."""
    import submission_factory as sf

    return sf.make_known()

