"""Import the LAOM paper's released HDF5 files into the dcsbench format.

The paper's layout: one file per split, groups ``"0".."N-1"``, each with datasets ``obs``
``(T, 64, 64, 3)`` uint8 (HWC), ``actions`` ``(T, A)``, ``states`` ``(T, S)`` and, optionally,
``rewards`` ``(T,)``, plus file attributes (``domain_name``, ``task_name``, ``difficulty``,
``img_hw``, ``split``, ...) and group attributes (``traj_return``). The authors' release stores no
per-step rewards: a group without ``rewards`` is imported with zero rewards, and its
``traj_return`` attributes are kept in the manifest (``policy.import.<split>.traj_returns``). If
``obs`` holds ``T + 1`` frames (the final observation too) the last one is dropped, so that
``obs[t]`` is the frame seen before ``actions[t]`` as everywhere in dcsbench. Attributes that are
plain numbers/strings are kept in the manifest under ``import``.

Labeled files (``...-labeled-1000x{B}-64px.hdf5``) hold B trajectories copied from the train file;
each group's attribute ``original_traj_idx`` names its source group. :func:`labeled_subsets_from_files`
maps them to train trajectory ids (checking the copied actions are the train ones), and
:func:`import_hdf5` (``labeled_files=``) makes them the dataset's ``labeled-{B}`` subsets instead of
dcsbench's own permutation.

Conversion is streaming: one trajectory is read from the HDF5 file at a time, written to the
Parquet shard and hashed, then the shards are decoded into the memory-mapped cache;
:func:`conversion_estimate` states the disk it will use before it starts.

    dcsbench import-hdf5 cheetah-run_train.hdf5 --eval-file cheetah-run_novel.hdf5 \\
        --name laom-cheetah-run --task cheetah-run --setting distractors --source davis

The result is a regular local dataset (shards, manifest, labeled subsets of all budgets, cache),
marked ``protocol_compliant: false`` (its references are the paper's, not dcsbench's).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from dcsbench import catalogue
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
    for k in ("obs", "actions"):
        if k not in g:
            raise ValueError(f"group {g.name}: missing dataset {k!r}")
    actions = fmt.real_float32(g["actions"][()], f"group {g.name}: actions")
    t = len(actions)
    obs = np.asarray(g["obs"])
    if obs.dtype != np.uint8 or obs.ndim != 4 or obs.shape[1:] != fmt.FRAME_SHAPE:
        raise ValueError(f"group {g.name}: obs must be (T, 64, 64, 3) uint8, got {obs.dtype} {obs.shape}")
    if len(obs) == t + 1:
        obs = obs[:t]
    if len(obs) != t:
        raise ValueError(f"group {g.name}: {len(obs)} frames for {t} actions")
    if "rewards" in g:
        rewards = fmt.real_float32(g["rewards"][()], f"group {g.name}: rewards").reshape(-1)[:t]
        if len(rewards) != t:
            raise ValueError(f"group {g.name}: {len(rewards)} rewards for {t} actions")
    else:  # the authors' release: per-trajectory return only (attribute traj_return)
        rewards = np.zeros(t, np.float32)
    if "states" in g:
        states = fmt.real_float32(g["states"][()], f"group {g.name}: states")
        states = states.reshape(len(states), -1)[:t]
        if len(states) != t:
            raise ValueError(f"group {g.name}: {len(states)} states for {t} actions")
    else:
        states = np.zeros((t, 1), np.float32)
    seed = g.attrs.get("seed", seed_default)
    return {"obs": obs, "actions": actions, "rewards": rewards, "states": states,
            "seed": int(np.asarray(seed).item())}


def _traj_returns(f, keys: list[str]) -> list[float] | None:
    """The ``traj_return`` attribute of every group, or None if any group lacks it."""
    out = []
    for k in keys:
        v = f[k].attrs.get("traj_return")
        if v is None:
            return None
        out.append(round(float(np.asarray(v).item()), 4))
    return out


def _split_shape(f, keys: list[str]) -> tuple[int, int, int]:
    """``(frames, action_dim, state_dim)`` of a split, from dataset shapes only (no data read)."""
    frames = 0
    for k in keys:
        t = f[k]["actions"].shape[0]
        frames += t
    g = f[keys[0]]
    a = int(np.prod(g["actions"].shape[1:]))
    s = int(np.prod(g["states"].shape[1:])) if "states" in g else 1
    return frames, a, s


def conversion_estimate(files: dict[str, str | Path]) -> dict:
    """Disk a conversion of ``files`` (``{"train": path, "eval": path}``) will write, from the
    HDF5 shapes alone: ``cache_bytes`` (memory-mapped arrays, exact), ``shards_max_bytes`` (the
    Parquet shards are at most about the raw size; 0.2-0.5x for real frames) and ``frames``."""
    import h5py

    frames = cache = 0
    for p in files.values():
        with h5py.File(p, "r") as f:
            n, a, s = _split_shape(f, _group_keys(f))
        frames += n
        cache += n * (fmt.FRAME_BYTES + 4 * (a + s + 1))
    return {"frames": frames, "cache_bytes": cache, "shards_max_bytes": cache,
            "total_max_bytes": 2 * cache}


def labeled_subsets_from_files(labeled_files: dict[int, str | Path], train_file: str | Path,
                               check_actions: bool = True) -> dict:
    """Map the paper's labeled files to train trajectory ids through ``original_traj_idx``.

    Args:
        labeled_files: budget -> HDF5 file holding that many trajectories copied from the train file.
        train_file: the train HDF5 file (groups ``"0".."N-1"``; group name = train id).
        check_actions: compare each labeled trajectory's actions with its train source (small
            arrays; catches a labeled file that belongs to another train file).

    Returns:
        The manifest's ``labeled_subsets`` entry: ``{"kind": "laom-release", "permutation_seed":
        None, "nested": bool, "budgets": {"B": {"ids", "sha256", "file"}}}``; ids in file order.
    """
    import h5py

    budgets = {}
    with h5py.File(train_file, "r") as tf:
        n_train = len(_group_keys(tf))
        for b in sorted(int(x) for x in labeled_files):
            path = Path(labeled_files[b])
            with h5py.File(path, "r") as lf:
                keys = _group_keys(lf)
                if len(keys) != b:
                    raise ValueError(f"{path.name}: {len(keys)} trajectories, expected {b} (labeled-{b})")
                ids = []
                for k in keys:
                    raw = lf[k].attrs.get("original_traj_idx")
                    if raw is None:
                        raise ValueError(f"{path.name}: group {k} has no 'original_traj_idx' attribute")
                    if isinstance(raw, bytes):
                        raw = raw.decode()
                    try:
                        idx = int(np.asarray(raw).item()) if not isinstance(raw, str) else int(raw)
                    except (TypeError, ValueError):
                        raise ValueError(f"{path.name}: group {k}: original_traj_idx {raw!r} is not "
                                         "an integer") from None
                    if not 0 <= idx < n_train:
                        raise ValueError(f"{path.name}: group {k}: original_traj_idx {idx} outside the "
                                         f"train file's 0..{n_train - 1}")
                    if check_actions:
                        a_lab = np.asarray(lf[k]["actions"], np.float32)
                        a_tr = np.asarray(tf[str(idx)]["actions"], np.float32)
                        if a_lab.shape != a_tr.shape or not np.array_equal(a_lab, a_tr):
                            raise ValueError(f"{path.name}: group {k}: actions differ from train "
                                             f"trajectory {idx} (labeled file of another train file?)")
                    ids.append(idx)
                if len(set(ids)) != len(ids):
                    raise ValueError(f"{path.name}: original_traj_idx repeats a trajectory")
            budgets[str(b)] = {"ids": ids, "sha256": fmt.labeled_subset_hash(b, ids), "file": path.name}
    ordered = [budgets[k]["ids"] for k in sorted(budgets, key=int)]
    nested = all(set(a) <= set(b) for a, b in zip(ordered, ordered[1:]))
    return {"kind": "laom-release", "permutation_seed": None, "nested": nested, "budgets": budgets}


def release_subset_problems(m: dict) -> list[str]:
    """What is inconsistent in the labeled subsets of a manifest whose subsets are the LAOM
    authors' (``labeled_subsets.kind == "laom-release"``; empty list when nothing is).

    Such ids cannot be recomputed from dcsbench's permutation; instead every budget B must list B
    distinct train ids in range, its sha256 must be :func:`~dcsbench.data.format.labeled_subset_hash`
    of them, the flat ``labeled_subset_hashes`` map must agree, each budget must name the labeled
    file it came from (also in ``policy.import.labeled``), ``nested`` must be true to the ids, and
    where the catalogue data knows a subset's hash (``labeled_ids_sha256`` of the release file,
    filled in once measured) it must match. For manifest checks (``integrity.manifest_problems``).
    """
    out = []
    sub = m["labeled_subsets"]
    n_train = len(m["splits"]["train"]["lengths"])
    if sub.get("permutation_seed") is not None:
        out.append("laom-release labeled subsets must not claim a permutation seed")
    flat = m.get("labeled_subset_hashes") or {}
    files = ((m.get("policy") or {}).get("import") or {}).get("labeled") or {}
    known, known_ids = {}, {}
    release = (m.get("policy") or {}).get("release")
    if release:
        try:
            from dcsbench.data import laom

            known = {str(f.budget): f for f in laom.get(release).files.values() if f.budget is not None}
            known_ids = {k.split("-", 1)[1]: v.get("labeled_ids_sha256") for k, v in
                         laom.catalogue()["datasets"][release]["files"].items() if k.startswith("labeled-")}
        except (ValueError, KeyError):
            out.append(f"policy.release {release!r} is not a known paper dataset")
    ordered = []
    for key, v in sub["budgets"].items():
        if not str(key).isdigit() or not 1 <= int(key) <= n_train:
            out.append(f"labeled budget {key!r} is not in 1..{n_train}")
            continue
        b, ids = int(key), [int(i) for i in v["ids"]]
        if len(ids) != b or len(set(ids)) != b or any(not 0 <= i < n_train for i in ids):
            out.append(f"labeled-{b}: needs {b} distinct train ids in 0..{n_train - 1}")
        h = fmt.labeled_subset_hash(b, ids)
        if v.get("sha256") != h:
            out.append(f"labeled-{b}: sha256 is not the hash of its ids")
        if flat.get(str(key)) != h:
            out.append(f"labeled_subset_hashes[{key!r}] is not the hash of labeled-{b}")
        if not v.get("file") or files.get(str(key)) != v.get("file"):
            out.append(f"labeled-{b}: the labeled file it came from is not recorded consistently")
        if str(key) in known and known[str(key)].file != v.get("file"):
            out.append(f"labeled-{b}: file {v.get('file')!r} is not the release's {known[str(key)].file!r}")
        want = known_ids.get(str(key))
        if want and want != h:
            out.append(f"labeled-{b}: hash differs from the release's known labeled_ids_sha256 "
                       "(registry_data/laom_datasets.json)")
        ordered.append((b, set(ids)))
    if set(map(str, flat)) != set(map(str, sub["budgets"])):
        out.append("labeled_subset_hashes and labeled_subsets list different budgets")
    ordered.sort(key=lambda x: x[0])
    nested = all(a <= b for (_, a), (_, b) in zip(ordered, ordered[1:]))
    if sub.get("nested") is not nested:
        out.append(f"labeled_subsets.nested says {sub.get('nested')}, the ids say {nested}")
    if m.get("protocol_compliant") is not False:
        out.append("a dataset with the authors' labeled subsets cannot be protocol_compliant")
    return out


def set_labeled_subsets(dataset_folder: str | Path, subsets: dict) -> dict:
    """Replace the labeled subsets of a written dataset (manifest, its flat hash map, card and the
    manifest hash in ``origin.json``; each file written atomically). Returns the new manifest."""
    from dcsbench.fileio import atomic_write_text

    d = Path(dataset_folder)
    m = fmt.load_manifest(d / fmt.MANIFEST)
    n = m["splits"]["train"]["n_trajectories"]
    for b, v in subsets["budgets"].items():
        if any(not 0 <= int(i) < n for i in v["ids"]) or len(v["ids"]) != int(b):
            raise ValueError(f"labeled-{b}: ids must be {b} train ids in 0..{n - 1}")
    m["labeled_subsets"] = subsets
    m["labeled_subset_hashes"] = {b: v["sha256"] for b, v in subsets["budgets"].items()}
    if subsets.get("kind") == "laom-release" and isinstance(m.get("policy", {}).get("import"), dict):
        m["policy"]["import"]["labeled"] = {b: v["file"] for b, v in subsets["budgets"].items()}
    text = fmt.manifest_text(m)
    atomic_write_text(d / fmt.CARD, fmt.card_text(m))
    atomic_write_text(d / fmt.MANIFEST, text)
    op = d / "origin.json"
    origin = json.loads(op.read_text()) if op.is_file() else {"kind": "hdf5"}
    origin["manifest_sha256"] = hashlib.sha256(text.encode()).hexdigest()
    atomic_write_text(op, json.dumps(origin, indent=1) + "\n")
    return m


def import_hdf5(file: str | Path, name: str, task: str | None = None, setting: str | None = None,
                source: str = "davis", eval_file: str | Path | None = None, root=None,
                progress: bool = True, labeled_files: dict[int, str | Path] | None = None,
                tier: str | None = None, sha256s: dict[str, str] | None = None,
                extra_policy: dict | None = None, log=None) -> Path:
    """Convert the paper's HDF5 file(s) into a local dcsbench dataset named ``name``.

    Args:
        file: HDF5 file of the training trajectories.
        name: dataset name (lowercase letters, digits, ``.-_``); if it is a catalogue name
            ``{task}-{setting}-{tier}``, task and setting are taken from it.
        task, setting: required when ``name`` is not a catalogue name.
        source: background source the data was rendered with (the paper used DAVIS).
        eval_file: HDF5 file of novel-background trajectories for the ``eval`` split (optional).
        root: cache root.
        labeled_files: budget -> the paper's labeled file; when given (even empty), these
            (mapped through ``original_traj_idx``) are the dataset's ``labeled-{B}`` subsets
            instead of dcsbench's permutation of all budgets.
        tier: tier recorded in the manifest (default: from the name, else ``import``).
        sha256s: known sha256 of ``file`` / ``eval_file`` (keys ``train``/``eval``), so a 60 GB
            file is not hashed a second time.
        extra_policy: more fields for the manifest's ``policy`` entry (e.g. the release name).
        log: callable for messages (default: none).

    The conversion streams one trajectory at a time (memory stays at a few trajectories); the
    dataset appears under its name only once complete (written in a staging folder, renamed).

    Returns:
        The dataset folder.
    """
    import h5py

    if not _SAFE_NAME.match(name):
        raise ValueError(f"dataset name {name!r}: use lowercase letters, digits, '.', '-', '_' (max 64)")
    name_tier = "import"
    try:
        dn = catalogue.parse_dataset_name(name)
        task, setting, name_tier = task or dn.task, setting or dn.setting, dn.tier
    except catalogue.UnknownNameError:
        if task is None or setting is None:
            raise ValueError(f"{name!r} is not a catalogue dataset name: pass --task and --setting") from None
    tier = tier or name_tier
    catalogue.check_choice("task", task, catalogue.TASKS)
    catalogue.check_choice("setting", setting, catalogue.SETTINGS)
    catalogue.check_choice("source", source, catalogue.SOURCES)
    sha256s = dict(sha256s or {})

    files = {"train": Path(file)}
    if eval_file is not None:
        files["eval"] = Path(eval_file)
    subsets = labeled_subsets_from_files(labeled_files, file) if labeled_files is not None else None
    handles = {s: h5py.File(p, "r") for s, p in files.items()}
    final = dataset_dir(name, root)
    staging = final.with_name(f".{final.name}.convert")
    try:
        splits, info = {}, {}
        for s, f in handles.items():
            keys = _group_keys(f)
            base = catalogue.SPLIT_SEED_BASE[s]
            has_seeds = "seed" in f[keys[0]].attrs
            seeds = [int(np.asarray(f[k].attrs.get("seed", base + i)).item()) for i, k in enumerate(keys)]
            splits[s] = SplitSource("train" if s == "train" else "novel", seeds,
                                    lambda i, f=f, keys=keys, base=base: _read_group(f[keys[i]], i, base + i))
            info[s] = {"file": files[s].name, "sha256": sha256s.get(s) or fmt.sha256_file(files[s]),
                       "file_attrs": _plain_attrs(f.attrs), "group0_attrs": _plain_attrs(f[keys[0]].attrs),
                       "rewards": "per-step" if "rewards" in f[keys[0]] else "absent (zeros stored)"}
            if not has_seeds:
                info[s]["seeds"] = f"not in the file: dcsbench placeholders {base}+i"
            returns = _traj_returns(f, keys)
            if returns is not None:
                info[s]["traj_returns"] = returns
        if subsets is not None:
            info["labeled"] = {b: v["file"] for b, v in subsets["budgets"].items()}
        policy = {"kind": "imported", "card_id": None, "import": info, **(extra_policy or {})}
        if log:
            est = conversion_estimate(files)
            log(f"[dcsbench] converting {name}: {est['frames']:,} frames; writes about "
                f"{est['cache_bytes'] / 1e9:.1f} GB of cache + at most {est['shards_max_bytes'] / 1e9:.1f} "
                f"GB of Parquet shards into {final.parent}")
        shutil.rmtree(staging, ignore_errors=True)
        write_dataset(staging, name=name, task=task, setting=setting, tier=tier,
                      source=source, policy=policy, protocol_compliant=False, splits=splits,
                      budgets=catalogue.BUDGETS if subsets is None else [],
                      origin={"kind": "hdf5", "revision": f"hdf5:{info['train']['sha256'][:12]}"},
                      progress=progress)
        if subsets is not None:
            set_labeled_subsets(staging, subsets)
        if final.exists():
            trash = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.old-"))
            os.replace(final, trash / "old")
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(staging, final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    finally:
        for f in handles.values():
            f.close()
    return final


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
