"""Import the LAOM paper's released HDF5 files into the dcsbench format.

The paper's layout: one file per split, groups ``"0".."N-1"``, each with datasets ``obs``
``(T, 64, 64, 3)`` uint8 (HWC), ``actions`` ``(T, A)``, ``rewards`` ``(T,)``, ``states``
``(T, S)``, plus file and group attributes. If ``obs`` holds ``T + 1`` frames (the final
observation too) the last one is dropped, so that ``obs[t]`` is the frame seen before
``actions[t]`` as everywhere in dcsbench. Attributes that are plain numbers/strings are kept in the
manifest under ``import``.

    dcsbench import-hdf5 cheetah-run_train.hdf5 --eval-file cheetah-run_novel.hdf5 \\
        --name laom-cheetah-run --task cheetah-run --setting distractors --source davis

The result is a regular local dataset (shards, manifest, labeled subsets of all budgets, cache),
marked ``protocol_compliant: false`` (its references are the paper's, not dcsbench's).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from dcsbench import registry
from dcsbench.data import format as fmt
from dcsbench.data.build import SplitSource, dataset_dir, write_dataset

_SAFE_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def _plain_attrs(attrs) -> dict:
    """JSON-safe copy of HDF5 attributes (numbers, strings, small arrays)."""
    out = {}
    for k, v in attrs.items():
        if isinstance(v, bytes):
            v = v.decode("utf-8", "replace")
        elif isinstance(v, np.ndarray) and v.size <= 64 and v.dtype.kind in "biuf":
            v = v.tolist()
        elif isinstance(v, np.generic):
            v = v.item()
        if isinstance(v, (str, int, float, bool, list)) and len(str(v)) <= 1000:
            out[str(k)] = v
    return out


def _group_keys(f) -> list[str]:
    keys = [k for k in f.keys() if k.isdigit()]
    if not keys:
        raise ValueError(f"{f.filename}: no trajectory groups named '0'..'N-1'")
    keys.sort(key=int)
    if [int(k) for k in keys] != list(range(len(keys))):
        raise ValueError(f"{f.filename}: trajectory groups are not numbered 0..{len(keys) - 1}")
    return keys


def _read_group(g, index: int, seed_default: int) -> dict:
    for k in ("obs", "actions", "rewards"):
        if k not in g:
            raise ValueError(f"group {g.name}: missing dataset {k!r}")
    actions = np.asarray(g["actions"], dtype=np.float32)
    t = len(actions)
    obs = np.asarray(g["obs"])
    if obs.dtype != np.uint8 or obs.ndim != 4 or obs.shape[1:] != fmt.FRAME_SHAPE:
        raise ValueError(f"group {g.name}: obs must be (T, 64, 64, 3) uint8, got {obs.dtype} {obs.shape}")
    if len(obs) == t + 1:
        obs = obs[:t]
    if len(obs) != t:
        raise ValueError(f"group {g.name}: {len(obs)} frames for {t} actions")
    rewards = np.asarray(g["rewards"], dtype=np.float32).reshape(-1)[:t]
    if "states" in g:
        states = np.asarray(g["states"], dtype=np.float32)
        states = states.reshape(len(states), -1)[:t]
        if len(states) != t:
            raise ValueError(f"group {g.name}: {len(states)} states for {t} actions")
    else:
        states = np.zeros((t, 1), np.float32)
    seed = g.attrs.get("seed", seed_default)
    return {"obs": obs, "actions": actions, "rewards": rewards, "states": states,
            "seed": int(np.asarray(seed).item())}


def import_hdf5(file: str | Path, name: str, task: str | None = None, setting: str | None = None,
                source: str = "davis", eval_file: str | Path | None = None, root=None,
                progress: bool = True) -> Path:
    """Convert the paper's HDF5 file(s) into a local dcsbench dataset named ``name``.

    Args:
        file: HDF5 file of the training trajectories.
        name: dataset name (lowercase letters, digits, ``.-_``); if it is a registry name
            ``{task}-{setting}-{tier}``, task and setting are taken from it.
        task, setting: required when ``name`` is not a registry name.
        source: background source the data was rendered with (the paper used DAVIS).
        eval_file: HDF5 file of novel-background trajectories for the ``eval`` split (optional).
        root: cache root.

    Returns:
        The dataset folder.
    """
    import h5py

    if not _SAFE_NAME.match(name):
        raise ValueError(f"dataset name {name!r}: use lowercase letters, digits, '.', '-', '_' (max 64)")
    tier = "import"
    try:
        dn = registry.parse_dataset_name(name)
        task, setting, tier = task or dn.task, setting or dn.setting, dn.tier
    except registry.UnknownNameError:
        if task is None or setting is None:
            raise ValueError(f"{name!r} is not a registry dataset name: pass --task and --setting") from None
    registry.check_choice("task", task, registry.TASKS)
    registry.check_choice("setting", setting, registry.SETTINGS)
    registry.check_choice("source", source, registry.SOURCES)

    files = {"train": Path(file)}
    if eval_file is not None:
        files["eval"] = Path(eval_file)
    handles = {s: h5py.File(p, "r") for s, p in files.items()}
    try:
        splits, info = {}, {}
        for s, f in handles.items():
            keys = _group_keys(f)
            base = registry.SPLIT_SEED_BASE[s]
            seeds = [int(np.asarray(f[k].attrs.get("seed", base + i)).item()) for i, k in enumerate(keys)]
            splits[s] = SplitSource("train" if s == "train" else "novel", seeds,
                                    lambda i, f=f, keys=keys, base=base: _read_group(f[keys[i]], i, base + i))
            info[s] = {"file": files[s].name, "sha256": fmt.sha256_file(files[s]),
                       "file_attrs": _plain_attrs(f.attrs), "group0_attrs": _plain_attrs(f[keys[0]].attrs)}
        policy = {"kind": "imported", "card_id": None, "import": info}
        write_dataset(dataset_dir(name, root), name=name, task=task, setting=setting, tier=tier,
                      source=source, policy=policy, protocol_compliant=False, splits=splits,
                      budgets=registry.BUDGETS, origin={"kind": "hdf5", "revision": f"hdf5:{info['train']['sha256'][:12]}"},
                      progress=progress)
    finally:
        for f in handles.values():
            f.close()
    return dataset_dir(name, root)


def export_hdf5(name: str, out: str | Path, split: str = "train", root=None) -> Path:
    """Write one split of a local dataset in the paper's HDF5 layout (used by the benchmark and
    tests; handy for tools that expect the paper's files)."""
    import h5py

    from dcsbench.data.store import load_dataset

    ds = load_dataset(name, split=split, root=root, download=False)
    out = Path(out)
    tmp = out.with_name(f".{out.name}.tmp")
    with h5py.File(tmp, "w") as f:
        f.attrs["dataset"] = name
        f.attrs["split"] = split
        for i in range(ds.n_trajectories):
            g = f.create_group(str(i))
            g.create_dataset("obs", data=ds.frames(i))
            g.create_dataset("actions", data=ds.actions(i))
            g.create_dataset("rewards", data=ds.rewards(i))
            g.create_dataset("states", data=ds.states(i))
            g.attrs["seed"] = ds.seeds[i]
    tmp.replace(out)
    return out
