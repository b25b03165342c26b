"""Expert policies: small state-based MLPs trained by this project (``dcsbench train-expert``).

Each committed expert is three files next to this module:

* ``{task}.safetensors`` - weights and observation statistics (see :mod:`dcsbench.experts.policy`),
* ``{task}.json`` - the card data (algorithm, steps, seed, exact command, measured return),
* ``{task}.md`` - the human-readable model card.

Loading needs numpy and safetensors only (no stable-baselines3, no torch)::

    from dcsbench.experts import load_expert
    policy = load_expert("cheetah-run")
    action = policy(info["state"])         # float32 in [-1, 1]
"""

from __future__ import annotations

import json
from pathlib import Path

from dcsbench import catalogue
from dcsbench.experts.policy import ExpertPolicy

EXPERTS_DIR = Path(__file__).resolve().parent

__all__ = ["ExpertPolicy", "load_expert", "available_experts", "expert_card", "EXPERTS_DIR"]


def available_experts() -> list[str]:
    """Tasks that have a committed expert (a ``{task}.safetensors`` file in this package)."""
    return sorted(t for t in catalogue.TASKS if (EXPERTS_DIR / f"{t}.safetensors").is_file())


def _missing(task: str) -> FileNotFoundError:
    have = available_experts()
    return FileNotFoundError(
        f"no expert for task {task!r}. Available experts: {', '.join(have) or 'none'}. "
        f"Train one with `dcsbench train-expert {task}` and install it with --install.")


def load_expert(task: str, path: str | Path | None = None) -> ExpertPolicy:
    """Load the expert for ``task`` (or from an explicit ``.safetensors`` ``path``).

    Returns a deterministic callable ``policy(state) -> action`` (float32 in ``[-1, 1]``); states
    are ``dcsbench.envs.state.flatten_state`` vectors, shape ``(S,)`` or ``(B, S)``.
    Raises ``UnknownNameError`` for an unknown task and ``FileNotFoundError`` (listing the
    available experts) when the task has no expert.
    """
    catalogue.check_choice("task", task, catalogue.TASKS)
    file = Path(path) if path is not None else EXPERTS_DIR / f"{task}.safetensors"
    if not file.is_file():
        if path is not None:
            raise FileNotFoundError(f"expert file {file} does not exist")
        raise _missing(task)
    policy = ExpertPolicy.load(file)
    if policy.task != task:
        raise ValueError(f"{file} holds an expert for {policy.task!r}, not {task!r}")
    return policy


def expert_card(task: str) -> dict:
    """The card data (``{task}.json``) of the committed expert for ``task``."""
    catalogue.check_choice("task", task, catalogue.TASKS)
    file = EXPERTS_DIR / f"{task}.json"
    if not file.is_file():
        raise _missing(task)
    return json.loads(file.read_text(encoding="utf-8"))
