"""Dataset benchmarks: bytes on disk, batch sampling throughput, download-and-verify time.

    MUJOCO_GL=egl python benchmarks/bench_data.py                       # CPU, prints a table
    MUJOCO_GL=egl python benchmarks/bench_data.py --device cuda --out benchmarks/RESULTS-data.md

What it does:

1. builds a small ``cheetah-run-distractors`` dataset with real 64px renders (the committed expert
   if there is one, else a random policy) into a temporary cache root;
2. bytes: raw arrays vs Parquet shards (Hub format) vs memory-mapped cache vs the paper's HDF5
   layout (uncompressed, as written by ``dcsbench.data.hdf5.export_hdf5``);
3. sampling at batch 512 (transitions/s; one transition = stacked o_t and o_{t+k}, 6 frames):
   the numpy sampler over the memory-mapped cache (``ArrayUnlabeledView.sample``, k=1 and k<=10),
   the labeled view (adds a_t), ``iter_stacks``, the torch sampler on CPU / on ``--device``, and
   reading the same batches from the paper-layout HDF5 file with h5py (per-sample slices);
4. download-and-verify of the tiny dataset from the local hub server (tests/hubserver.py):
   pinned download, sha256 of every shard, decode into the cache, content-hash check.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
NAME = "cheetah-run-distractors-tiny"


def rate(fn, batch: int, seconds: float) -> float:
    """Items per second of ``fn`` (one call yields ``batch`` items), after one warm-up call."""
    fn()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        fn()
        n += 1
    return n * batch / (time.perf_counter() - t0)


def hdf5_sampler(path: Path, batch: int, max_offset: int, rng: np.random.Generator):
    """Sampling straight from the paper-layout HDF5 file: per-sample h5py slices."""
    import h5py

    f = h5py.File(path, "r")
    keys = sorted(f.keys(), key=int)
    obs = [f[k]["obs"] for k in keys]
    acts = [f[k]["actions"] for k in keys]
    lengths = np.array([len(o) for o in obs])

    def stack(o, t):
        lo = max(t - 2, 0)
        fr = o[lo:t + 1]
        if len(fr) < 3:
            fr = np.concatenate([np.repeat(fr[:1], 3 - len(fr), axis=0), fr])
        return np.concatenate(list(fr), axis=-1)

    def sample():
        traj = rng.integers(0, len(obs), batch)
        k = rng.integers(1, max_offset + 1, batch)
        t = (rng.random(batch) * (lengths[traj] - k)).astype(int)
        o = np.stack([stack(obs[i], ti) for i, ti in zip(traj, t)])
        n = np.stack([stack(obs[i], ti + ki) for i, ti, ki in zip(traj, t, k)])
        a = np.stack([acts[i][ti] for i, ti in zip(traj, t)])
        return o, n, a

    return sample, f


def synthetic_dataset(n_train: int, length: int) -> Path:
    """A dataset of random pixels written without a simulator (sampling speed does not depend on
    content; bytes on disk do, so sizes of a synthetic run are not representative)."""
    from dcsbench.data.build import SplitSource, dataset_dir, write_dataset

    def ep(seed):
        rng = np.random.default_rng(seed)
        return {"obs": rng.integers(0, 256, (length, 64, 64, 3), dtype=np.uint8),
                "actions": rng.uniform(-1, 1, (length, 6)).astype(np.float32),
                "rewards": rng.random(length).astype(np.float32),
                "states": rng.normal(size=(length, 17)).astype(np.float32), "seed": seed}

    write_dataset(dataset_dir(NAME), name=NAME, task="cheetah-run", setting="distractors",
                  tier="tiny", source="procedural", policy={"kind": "synthetic", "card_id": None},
                  protocol_compliant=False, progress=False,
                  splits={"train": SplitSource("train", list(range(n_train)), ep),
                          "eval": SplitSource("novel", [1_000_000], lambda i: ep(1_000_000))})
    return dataset_dir(NAME)


def dir_bytes(p: Path) -> int:
    return sum(f.stat().st_size for f in Path(p).rglob("*") if f.is_file())


def _drop_pages(folder: Path) -> None:
    """Evict a folder's files from the page cache (clean pages; no root needed)."""
    for p in folder.iterdir():
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def _timed(fn, reps: int, before=None) -> float:
    """Median seconds of ``fn()`` over ``reps`` calls (``before()`` runs untimed before each)."""
    out = []
    for _ in range(reps):
        if before is not None:
            before()
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return float(np.median(out))


def open_check(name: str, reps: int) -> str:
    """Markdown section: cost of the open-time cache check on dataset ``name`` (see the module
    docstring); works on a copy under a temporary cache root."""
    import hashlib
    import json
    import shutil

    from dcsbench.data import cache as cache_mod
    from dcsbench.data import store
    from dcsbench.data.build import dataset_dir

    src = dataset_dir(name)
    if not (src / "manifest.json").is_file():
        raise SystemExit(f"{src} is missing: build it first with `dcsbench build {name}`")
    tmp = Path(tempfile.mkdtemp(prefix="dcs_bench_open_"))
    d = tmp / "datasets" / name
    shutil.copytree(src, d, ignore=shutil.ignore_patterns("data"))
    shutil.copytree(src / "data", d / "data") if (src / "data").is_dir() else None
    m = store.read_local_manifest(name, tmp)
    rows = []
    calib = np.random.default_rng(0).integers(0, 255, 200_000_000, dtype=np.uint8)
    t_sha = _timed(lambda: hashlib.sha256(memoryview(calib)).digest(), 3)
    del calib
    load = os.getloadavg()
    try:
        for split in ("train", "eval"):
            e = m["splits"][split]
            sd = cache_mod.split_dir(d, split)
            size = sum((sd / f"{k}.npy").stat().st_size for k in cache_mod.ARRAYS)
            rec = cache_mod.split_complete(d, split)
            if "files" not in rec:  # old COMPLETE: time the first open (full check + upgrade)
                legacy = rec
            else:
                legacy = {k: rec[k] for k in ("content_hash", "n_trajectories", "n_frames")}
            (sd / cache_mod.COMPLETE).write_text(json.dumps(legacy))
            cache_mod._CHECKED.clear()
            _drop_pages(sd)
            t0 = time.perf_counter()
            cache_mod.check_split(d, split, e["lengths"], e["content_hash"])
            t_upgrade = time.perf_counter() - t0

            def check(full):
                cache_mod._CHECKED.clear()
                cache_mod.check_split(d, split, e["lengths"], e["content_hash"], full=full)

            warm_full = _timed(lambda: check(True), reps)
            cold_full = _timed(lambda: check(True), reps, before=lambda: _drop_pages(sd))
            warm_s = _timed(lambda: check(False), reps)
            cold_s = _timed(lambda: check(False), reps, before=lambda: _drop_pages(sd))
            memo = _timed(lambda: cache_mod.check_split(d, split, e["lengths"], e["content_hash"]),
                          max(reps, 20))
            t0 = time.perf_counter()
            {k: cache_mod._file_record(sd / f"{k}.npy") for k in cache_mod.ARRAYS}
            t_rec = time.perf_counter() - t0
            rows.append((split, size, e["n_trajectories"], warm_full, cold_full, warm_s, cold_s, memo,
                         t_upgrade, t_rec))

        def prep(check: bool):
            cache_mod._CHECKED.clear()
            if check:
                store.prepare(name, 2, root=tmp)
                return
            real = cache_mod.check_split
            cache_mod.check_split = lambda dd, s, lengths=None, expected_hash=None, full=None: \
                cache_mod.split_complete(dd, s)["content_hash"]
            try:
                store.prepare(name, 2, root=tmp)
            finally:
                cache_mod.check_split = real

        prep(True)
        p_off = _timed(lambda: prep(False), reps)
        p_on = _timed(lambda: prep(True), reps)
        t0 = time.perf_counter()
        store.prepare(name, 2, root=tmp)
        p_memo = time.perf_counter() - t0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    mb = 1e6
    lines = [f"## Open-time cache check (`--open-check {name}`)", "",
             f"Measured {date.today().isoformat()} on the 2-core CPU sandbox ({platform.machine()} "
             f"{platform.system()}, {os.cpu_count()} CPU cores, python {platform.python_version()}); "
             f"median of {reps} (memo: of {max(reps, 20)}); cold = the files' pages dropped with "
             "`posix_fadvise(DONTNEED)` first (meant to force reads from disk). Machine load while measuring: "
             f"load average {load[0]:.1f} / {load[1]:.1f} (1 / 5 min) on {os.cpu_count()} cores; plain "
             f"sha256 of 200 MB in RAM ran at {200 / t_sha:,.0f} MB/s (the ceiling of the full check).", "",
             "| split | array bytes | full check warm | full check cold | sampled warm | sampled cold "
             "| memo hit | old COMPLETE: first open (full + upgrade, cold) | write-time per-file records |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for split, size, n, wf, cf, ws, cs, memo, up, rec in rows:
        lines.append(f"| {split} ({n} traj.) | {size / mb:,.1f} MB | {wf:.3f} s ({size / mb / wf:,.0f} MB/s) "
                     f"| {cf:.3f} s ({size / mb / cf:,.0f} MB/s) | {ws * 1e3:.1f} ms | {cs * 1e3:.1f} ms "
                     f"| {memo * 1e6:.0f} us | {up:.3f} s | {rec:.3f} s |")
    lines += ["", f"`prepare({name!r}, 2)` end to end (train + eval, warm): {p_off:.3f} s without the "
              f"check, {p_on:.3f} s with the full check (+{p_on - p_off:.3f} s), {p_memo:.3f} s for a "
              "second call in the same process (memo hit)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--open-check", default=None, metavar="NAME",
                    help="only measure the open-time cache check on local dataset NAME")
    ap.add_argument("--reps", type=int, default=5, help="repetitions of each --open-check timing")
    ap.add_argument("--n-train", type=int, default=8)
    ap.add_argument("--episode-length", type=int, default=1000)
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--seconds", type=float, default=3.0, help="time per throughput measurement")
    ap.add_argument("--device", default=None, help="also benchmark the torch sampler on this device")
    ap.add_argument("--out", default=None, help="write the markdown results here")
    ap.add_argument("--synthetic", action="store_true",
                    help="random-pixel dataset, no simulator (machines without MuJoCo)")
    args = ap.parse_args()
    os.environ.setdefault("MUJOCO_GL", "egl")
    if args.open_check:
        text = open_check(args.open_check, args.reps)
        print(text)
        if args.out:
            from dcsbench.fileio import atomic_write_text

            atomic_write_text(args.out, text)
        return 0
    import torch

    torch.set_num_threads(1)
    from dcsbench.data import hub, store
    from dcsbench.data.hdf5 import export_hdf5

    tmp = Path(tempfile.mkdtemp(prefix="dcs_bench_data_"))
    os.environ["DCSBENCH_HOME"] = str(tmp / "home")
    rows, B = [], args.batch

    t0 = time.perf_counter()
    if args.synthetic:
        d, policy = synthetic_dataset(args.n_train, args.episode_length), "synthetic (random pixels)"
    else:
        from dcsbench.data.build import build_dataset
        from dcsbench.experts import available_experts

        policy = "expert" if "cheetah-run" in available_experts() else "random"
        d = build_dataset(NAME, policy=policy, episode_length=args.episode_length,
                          n_train=args.n_train, n_eval=1, progress=False)
    t_build = time.perf_counter() - t0
    m = store.read_local_manifest(NAME)
    tr = m["splits"]["train"]
    n_frames = sum(tr["lengths"])
    raw = tr["raw_bytes"]
    shards = sum(s["bytes"] for s in tr["shards"])
    cache_b = dir_bytes(d / "cache" / "train")
    h5 = export_hdf5(NAME, tmp / "train.hdf5", split="train")
    rows.append(("setup", f"{args.n_train} train trajectories x {args.episode_length} steps "
                 f"({n_frames} frames), policy {policy}; build (collect+write+verify) "
                 f"{t_build:.1f} s"))
    sizes = [("raw arrays (frames+actions+rewards+states)", raw),
             ("Parquet shards (Hub format, zstd)", shards),
             ("memory-mapped cache (.npy)", cache_b),
             ("paper-layout HDF5 (uncompressed)", h5.stat().st_size)]

    pd = store.prepare(NAME, 2)
    rng = np.random.default_rng(0)
    samp = [
        ("numpy sampler over memory map, k=1", rate(lambda: pd.unlabeled.sample(B, rng), B, args.seconds)),
        ("numpy sampler over memory map, k<=10", rate(lambda: pd.unlabeled.sample(B, rng, max_offset=10), B, args.seconds)),
        ("labeled view (+ actions), k=1", rate(lambda: pd.labeled.sample(B, rng), B, args.seconds)),
    ]
    it = pd.unlabeled.iter_stacks(B)
    t0 = time.perf_counter()
    n_it = sum(len(b["index"]) for b in it)
    samp.append(("iter_stacks (all pairs in order)", n_it / (time.perf_counter() - t0)))
    ts = pd.unlabeled.as_torch("cpu")
    g = torch.Generator().manual_seed(0)
    samp.append(("torch sampler, cpu, k<=10", rate(lambda: ts.sample(B, g, max_offset=10), B, args.seconds)))
    if args.device and args.device != "cpu":
        dev = torch.device(args.device)
        t0 = time.perf_counter()
        tg = pd.unlabeled.as_torch(dev)
        t_up = time.perf_counter() - t0
        gg = torch.Generator(dev).manual_seed(0)

        def gpu_batch():
            tg.sample(B, gg, max_offset=10)
            torch.cuda.synchronize(dev)

        name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else str(dev)
        samp.append((f"torch sampler on {name}, k<=10 (upload {t_up:.1f} s)", rate(gpu_batch, B, args.seconds)))

        def host_to_dev():
            b = pd.unlabeled.sample(B, rng, max_offset=10)
            torch.from_numpy(b["obs"]).to(dev, non_blocking=False)
            torch.from_numpy(b["next_obs"]).to(dev)
            torch.cuda.synchronize(dev)

        samp.append((f"numpy sampler + copy to {name}", rate(host_to_dev, B, args.seconds)))
    hs, hf = hdf5_sampler(h5, B, 10, np.random.default_rng(0))
    samp.append(("paper-layout HDF5, h5py per-sample reads, k<=10", rate(hs, B, args.seconds)))
    t0 = time.perf_counter()
    _ = [hf[k]["obs"][()] for k in hf.keys()]
    t_load = time.perf_counter() - t0
    hf.close()
    rows.append(("hdf5 full load", f"reading every `obs` of the HDF5 file into RAM: {t_load:.2f} s "
                 f"({n_frames / t_load:,.0f} frames/s)"))

    # Download-and-verify from the local hub server.
    sys.path.insert(0, str(ROOT / "tests"))
    from hubserver import HubServer
    from huggingface_hub import constants

    with HubServer() as srv:
        os.environ.update({"HF_ENDPOINT": srv.url, "HF_HUB_OFFLINE": "0", "HF_HUB_DISABLE_XET": "1",
                           "HF_TOKEN": "hf_bench"})
        constants.ENDPOINT, constants.HF_HUB_OFFLINE, constants.HF_HUB_DISABLE_XET = srv.url, False, True
        constants.HUGGINGFACE_CO_URL_TEMPLATE = srv.url + "/{repo_id}/resolve/{revision}/{filename}"
        constants.HF_HUB_CACHE = str(tmp / "hf" / "hub")
        sha = hub.publish(NAME, "bench/" + NAME)
        os.environ["DCSBENCH_HOME"] = str(tmp / "home2")
        t0 = time.perf_counter()
        hub.download(NAME, repo_id="bench/" + NAME, revision=sha, log=lambda msg: None)
        t_dl = time.perf_counter() - t0
    total = sum(s["bytes"] for e in m["splits"].values() for s in e["shards"])
    rows.append(("download+verify", f"{total / 1e6:.1f} MB of shards from the local hub server "
                 f"(pinned revision, sha256 per shard, decode to cache, content hash): {t_dl:.2f} s"))

    lines = [f"# Dataset benchmarks (benchmarks/bench_data.py)", "",
             f"Measured {date.today().isoformat()} on {platform.machine()} {platform.system()}, "
             f"{os.cpu_count()} CPU cores, python {platform.python_version()}, "
             f"torch {torch.__version__}; batch {B}; numbers from one run (shared machine: noisy).", ""]
    lines += [f"- **{k}**: {v}" for k, v in rows]
    lines += ["", "## Bytes on disk (train split)", "", "| storage | bytes | vs raw |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:,} | {v / raw:.2f}x |" for k, v in sizes]
    lines += ["", f"## Sampling throughput (batch {B}; transition = stacked o_t and o_t+k = 6 frames)",
              "", "| sampler | transitions/s | frames/s |", "|---|---:|---:|"]
    lines += [f"| {k} | {v:,.0f} | {6 * v:,.0f} |" for k, v in samp]
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        from dcsbench.fileio import atomic_write_text

        atomic_write_text(args.out, text)
    import shutil

    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
