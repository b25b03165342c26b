"""Leakage: from inside ``Agent.fit``, the obvious routes reach nothing hidden.

A snooping agent runs through the real runner (``dcsbench run``, in a fresh subprocess so
that no other test's objects are in memory) on a tiny dataset, and tries from inside ``fit``:

* the views' attributes (``dir``, ``__dict__``/``vars``, ``__slots__``) and everything
  reachable from them with ``gc.get_referents`` and ndarray ``.base`` chains;
* file paths: ``np.memmap`` objects / ``.filename`` attributes, strings naming the dataset
  cache;
* the callers' stack frames (locals of the runner, the CLI) and the module globals of every
  ``dcsbench``/``baselines`` module;
* every object the garbage collector tracks (``gc.get_objects``).

Hidden data is recognised by content: byte signatures of actions of unlabeled trajectories,
rewards, simulator states and eval-split frames, computed beforehand by the test. A positive
control checks the scanner does find the labeled actions the agent *is* allowed to see.

Since the agent runs in its own process (dcsbench/isolation.py), these routes reach only what
the worker holds; tests/test_tamper.py attacks act/latent_actions and the harness itself. Out of
scope (documented in dcsbench/isolation.py): code that reads the disk or the parent's memory;
review and re-runs of leaderboard entries are the answer to deliberate cheating.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np

from dcsbench.agent import Agent

NAME = "cheetah-run-distractors-tiny"
HIDDEN_TYPES = {"EvalSplit", "ProtocolData", "DatasetSplit"}
SKIP_TYPES = (type(sys), type, type(len), type(lambda: 0), type(Agent.fit.__code__))


class Snoop(Agent):
    """Tries every route in ``fit`` and writes what it found to ``config["report"]``."""

    name = "snoop"

    def fit(self, unlabeled, labeled, spec, budget, seed, logger):
        sigs = json.loads(Path(self.config["signatures"]).read_text())
        hidden = {k: [bytes.fromhex(h) for h in v] for k, v in sigs["hidden"].items()}
        allowed = [bytes.fromhex(h) for h in sigs["allowed"]]
        root = sigs["root"]
        found: list[str] = []
        checked = {"arrays": 0, "objects": 0}
        control = []

        def check_array(a: np.ndarray, where: str) -> None:
            checked["arrays"] += 1
            if isinstance(a, np.memmap) or getattr(a, "filename", None):
                found.append(f"memmap with file name at {where}")
            if a.nbytes > 200_000_000:
                return
            b = np.ascontiguousarray(a).tobytes()
            for kind, pats in hidden.items():
                if any(p in b for p in pats):
                    found.append(f"{kind} in array {a.dtype}{a.shape} at {where}")
            if any(p in b for p in allowed):
                control.append(where)

        def check_obj(o, where: str) -> None:
            checked["objects"] += 1
            if type(o).__name__ in HIDDEN_TYPES:
                found.append(f"{type(o).__name__} object at {where}")
            elif isinstance(o, str) and root in o:
                found.append(f"dataset path {o!r} at {where}")
            elif isinstance(o, np.ndarray):
                check_array(o, where)
                base = o.base
                while base is not None:  # .base chain
                    check_obj(base, where + ".base")
                    base = getattr(base, "base", None)
            elif getattr(o, "filename", None) and isinstance(getattr(o, "filename"), str):
                found.append(f"object with .filename {o.filename!r} at {where}")

        def walk(roots: dict, limit: int = 200_000) -> None:
            seen, queue = set(), list(roots.items())
            while queue and len(seen) < limit:
                where, o = queue.pop()
                if id(o) in seen or isinstance(o, SKIP_TYPES):
                    continue
                seen.add(id(o))
                check_obj(o, where)
                for i, r in enumerate(gc.get_referents(o)):
                    queue.append((f"{where}/{type(r).__name__}[{i}]", r))
                for attr in getattr(type(o), "__slots__", ()):
                    if hasattr(o, attr):
                        queue.append((f"{where}.{attr}", getattr(o, attr)))

        # 1. the views and spec: every attribute (dir / vars / __dict__ / slots), referents, bases
        roots = {}
        for vname, view in (("unlabeled", unlabeled), ("labeled", labeled), ("spec", spec),
                            ("logger", logger)):
            roots[vname] = view
            for attr in dir(view):
                if attr.startswith("__") and attr not in ("__dict__", "__slots__"):
                    continue
                try:
                    roots[f"{vname}.{attr}"] = getattr(view, attr)
                except Exception:  # noqa: BLE001 - some attributes may refuse access
                    pass
            try:
                roots[f"vars({vname})"] = vars(view)
            except TypeError:
                pass
        roots["frames(0).base"] = unlabeled.frames(0).base
        # 2. the callers' frames: locals of the runner and the CLI
        frame = sys._getframe(1)
        depth = 0
        while frame is not None:
            for k, v in frame.f_locals.items():
                roots[f"frame{depth}:{frame.f_code.co_name}.{k}"] = v
            frame, depth = frame.f_back, depth + 1
        # 3. module globals of the harness
        for mname, mod in list(sys.modules.items()):
            if mname.split(".")[0] in ("dcsbench", "baselines"):
                for k, v in vars(mod).items():
                    roots[f"{mname}.{k}"] = v
        walk(roots)
        # 4. everything the garbage collector tracks
        warnings.simplefilter("ignore")  # isinstance() on deprecated torch aliases warns
        for o in gc.get_objects():
            if type(o).__name__ in HIDDEN_TYPES:
                found.append(f"gc: {type(o).__name__}")
            elif isinstance(o, dict):
                for v in list(o.values()):
                    if isinstance(v, np.ndarray):
                        check_obj(v, "gc:dict")
            elif isinstance(o, (list, tuple)):
                for v in o:
                    if isinstance(v, np.ndarray):
                        check_obj(v, "gc:seq")
        report = {"found": sorted(set(found)), "checked": checked, "control": control[:5]}
        Path(self.config["report"]).write_text(json.dumps(report, indent=1))
        self.dim = spec.action_dim

    def act(self, obs):
        return np.zeros((len(obs), self.dim), np.float32)


def _signatures(root: Path, budget: int) -> dict:
    """Byte patterns of hidden data (and of the allowed labeled actions, as a control)."""
    from dcsbench.data import load_dataset

    train = load_dataset(NAME, "train", root=root)
    labeled_ids = set(load_dataset(NAME, f"labeled-{budget}", root=root).trajectory_ids)
    hidden = {"hidden actions": [], "rewards": [], "states": [], "eval frames": []}
    allowed = []
    for i in range(train.n_trajectories):
        a = np.asarray(train.actions(i), dtype=np.float32)
        (allowed if i in labeled_ids else hidden["hidden actions"]).append(a[1:3].tobytes().hex())
        r = np.asarray(train.rewards(i), np.float32)
        nz = np.flatnonzero(r)        # a run of zero rewards is 16 zero bytes: it matches any
        if len(nz):                   # zeroed buffer, so the signature starts at a nonzero one
            hidden["rewards"].append(r[nz[0]:nz[0] + 4].tobytes().hex())
        hidden["states"].append(np.asarray(train.states(i), np.float32)[1].tobytes().hex())
    ev = load_dataset(NAME, "eval", root=root)
    for i in range(ev.n_trajectories):
        hidden["eval frames"].append(np.asarray(ev.frames(i))[3].tobytes().hex())
    assert len(labeled_ids) == budget and hidden["hidden actions"] and hidden["rewards"]
    for kind, sigs in hidden.items():   # no signature that is one repeated byte (false positives)
        hidden[kind] = [h for h in sigs if len(set(bytes.fromhex(h))) > 1]
    return {"hidden": hidden, "allowed": allowed, "root": str(root)}


def test_no_route_from_fit_reaches_hidden_data(tiny_dataset_home, tmp_path):
    root = Path(tiny_dataset_home)
    sig_file, report = tmp_path / "sigs.json", tmp_path / "report.json"
    sig_file.write_text(json.dumps(_signatures(root, budget=2)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent),
                                                      os.environ.get("PYTHONPATH", "")]),
               DCSBENCH_REFERENCES=str(tmp_path / "refs.json"))
    cmd = [sys.executable, "-m", "dcsbench.cli", "run", "--agent", "test_leakage:Snoop",
           "--dataset", NAME, "--budget", "2", "--out", str(tmp_path / "runs"),
           "--set", f"signatures={sig_file}", "--set", f"report={report}",
           "--episodes", "1", "--episode-length", "5", "--num-envs", "1",
           "--no-generalization", "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rep = json.loads(report.read_text())
    assert rep["checked"]["arrays"] > 5 and rep["checked"]["objects"] > 300
    assert rep["control"], "scanner failed to find the labeled actions it is allowed to see"
    assert rep["found"] == []
