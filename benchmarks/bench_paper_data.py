"""Benchmark of the paper-release path (dcsbench/data/laom.py): download throughput from a local
HTTP server and conversion frames/s.

A small release in the authors' layout (train file of ``--n-train`` x ``--length`` steps, eval
file, labeled files of budgets 2 and 4) is written with h5py and served on 127.0.0.1 by the test
suite's Range server (tests/test_paper_data.py ``FileServer``). Measured:

* fresh download of the train file (``laom.download_file``: HTTP GET streamed to ``.part``,
  sha256 while streaming, HDF5 structure check, rename), MB/s;
* a resumed download after the connection dropped at half the file (one call, Range request);
* a second ``laom.download`` of everything, served from the cache (no request);
* conversion (``laom.convert``: import_hdf5 to Parquet shards + verified memory-mapped cache, the
  authors' labeled subsets mapped) in a child process: frames/s and the child's peak RSS, to show
  the conversion streams (peak memory far below the file size).

Frames are ``--frames random`` (incompressible, the worst case for shard size) or ``smooth``
(gradients + noise, compressible like rendered frames). Run::

    python benchmarks/bench_paper_data.py --n-train 16 --length 1000 --frames smooth
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from dcsbench.data import laom  # noqa: E402

NAME = "laom/cheetah-run-distractors"


def _frames(rng, t: int, kind: str) -> np.ndarray:
    if kind == "random":
        return rng.integers(0, 256, (t, 64, 64, 3), dtype=np.uint8)
    y, x = np.mgrid[0:64, 0:64]
    base = np.stack([x * 4, y * 4, (x + y) * 2], -1).astype(np.int16)
    shift = (np.arange(t) % 64)[:, None, None, None]
    noise = rng.integers(-6, 7, (t, 64, 64, 3), dtype=np.int16)
    return np.clip(np.roll(base[None], 1, axis=2) + shift + noise, 0, 255).astype(np.uint8)


def write_release(folder: Path, n_train: int, length: int, kind: str) -> dict:
    """Write train/eval/labeled-2/labeled-4 files in the authors' layout; returns name -> path."""
    import random

    from test_paper_data import _write_authors_file

    rng = np.random.default_rng(0)
    ds = laom.get(NAME)
    folder.mkdir(parents=True, exist_ok=True)

    def traj():
        return {"obs": _frames(rng, length, kind), "states": rng.normal(size=(length, 17)).astype(np.float32),
                "actions": rng.uniform(-1, 1, (length, 6)).astype(np.float32)}

    train = [traj() for _ in range(n_train)]
    out = {}
    p = folder / ds.files["train"].file
    _write_authors_file(p, train, "train")
    out[p.name] = p
    p = folder / ds.files["eval"].file
    _write_authors_file(p, [traj() for _ in range(2)], "val")
    out[p.name] = p
    order = list(range(n_train))
    random.Random(42).shuffle(order)
    for b in (2, 4):
        p = folder / ds.files[f"labeled-{b}"].file
        _write_authors_file(p, [train[j] for j in order[:b]], "train",
                            {i: {"original_traj_idx": str(j)} for i, j in enumerate(order[:b])})
        out[p.name] = p
    return out


#: Peak RSS of the running process in kB (VmHWM; unlike ru_maxrss it is not inherited across
#: fork + exec from the parent, which holds the served files in memory).
HWM = "int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])"

_SERVER = """
import sys, time, json
sys.path.insert(0, sys.argv[1] + '/tests')
from pathlib import Path
from test_paper_data import FileServer
srv = FileServer()
for p in Path(sys.argv[2]).iterdir():
    srv.files['/data/' + p.name] = p.read_bytes()
print(srv.url, flush=True)
for line in sys.stdin:
    cmd = line.split()
    if cmd[0] == 'drop':
        srv.drop_after['/data/' + cmd[1]] = int(cmd[2])
    print(json.dumps(srv.requests), flush=True)
"""


class ServerProcess:
    """The test suite's Range server (``FileServer``) in its own process, so that it does not share
    the client's GIL; ``command("drop FILE N")`` cuts the next GET of FILE after N bytes."""

    def __init__(self, folder: Path) -> None:
        self.proc = subprocess.Popen([sys.executable, "-c", _SERVER, str(ROOT), str(folder)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = self.proc.stdout.readline().strip()

    def command(self, line: str) -> list:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def requests(self) -> list:
        return self.command("noop")

    def gets(self, name: str) -> list:
        return [r for m, p, r in self.requests() if m == "GET" and p.endswith("/" + name)]

    def stop(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-train", type=int, default=16)
    ap.add_argument("--length", type=int, default=1000)
    ap.add_argument("--frames", choices=["random", "smooth"], default="smooth")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_paper_data-"))
    rel = write_release(tmp / "release", args.n_train, args.length, args.frames)
    srv = ServerProcess(tmp / "release")
    cat = copy.deepcopy(laom.catalogue())
    files = cat["datasets"][NAME]["files"]
    files["train"]["trajectories"], files["eval"]["trajectories"] = args.n_train, 2
    for k in [k for k in files if k.startswith("labeled-") and k not in ("labeled-2", "labeled-4")]:
        del files[k]
    laom._CATALOGUE = cat
    home = tmp / "home"
    os.environ["DCSBENCH_HOME"] = str(home)
    os.environ[laom.BASE_URL_ENV] = srv.url
    quiet = lambda m: None  # noqa: E731
    ds = laom.get(NAME)
    train = ds.files["train"]
    size = (tmp / "release" / train.file).stat().st_size
    rows = {}

    t0 = time.perf_counter()
    laom.download(NAME, splits=["train"], convert_after=False, progress=False, log=quiet)
    dt = time.perf_counter() - t0
    rows["download"] = {"bytes": size, "s": dt, "MB_s": size / dt / 1e6}

    (laom.raw_dir() / train.file).unlink()
    rec = laom.read_hash_record()
    del rec[train.file]
    laom._write_hash_record(None, rec)
    srv.command(f"drop {train.file} {size // 2}")
    t0 = time.perf_counter()
    laom.download(NAME, splits=["train"], convert_after=False, progress=False, log=quiet)
    dt = time.perf_counter() - t0
    rows["download_resumed"] = {"bytes": size, "s": dt, "MB_s": size / dt / 1e6,
                                "ranges": [r for r in srv.gets(train.file) if r][-1:]}

    laom.download(NAME, convert_after=False, progress=False, log=quiet)  # eval + labeled
    n = len(srv.requests())
    t0 = time.perf_counter()
    laom.download(NAME, convert_after=False, progress=False, log=quiet)
    rows["second_download_cached"] = {"s": time.perf_counter() - t0, "requests": len(srv.requests()) - n}

    (tmp / "cat.json").write_text(json.dumps(cat))
    code = ("import json, time, resource; from dcsbench.data import laom; "
            f"laom._CATALOGUE = json.load(open({str(tmp / 'cat.json')!r})); t = time.perf_counter(); "
            f"laom.convert({NAME!r}, progress=False, log=lambda m: None); "
            f"print(json.dumps({{'s': time.perf_counter() - t, 'maxrss_kb': {HWM}}}))")
    base = subprocess.run([sys.executable, "-c", "import json; from dcsbench.data import laom, hdf5; "
                           "import pyarrow.parquet, h5py, tqdm, dcsbench.data.build; "
                           f"print(json.dumps({{'maxrss_kb': {HWM}}}))"],
                          capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    conv = json.loads(out.stdout.strip().splitlines()[-1])
    frames = (args.n_train + 2) * args.length
    d = home / "datasets" / laom.local_name(NAME)
    shards = sum(p.stat().st_size for p in (d / "data").glob("*.parquet"))
    rows["convert"] = {"frames": frames, "s": conv["s"], "frames_s": frames / conv["s"],
                       "peak_rss_MB": conv["maxrss_kb"] / 1024,
                       "import_only_rss_MB": json.loads(base.stdout)["maxrss_kb"] / 1024,
                       "hdf5_MB": sum(p.stat().st_size for p in rel.values()) / 1e6,
                       "shards_MB": shards / 1e6}
    srv.stop()
    info = {"machine": f"{platform.machine()} {os.cpu_count()} CPUs, python {platform.python_version()}",
            "args": vars(args)}
    print(json.dumps({"info": info, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
