"""The on-disk/Hub format of a dcsbench dataset: Parquet shards, manifest, dataset card, hashes.

A dataset folder (exactly what is published to the Hub) holds::

    README.md                              dataset card (YAML header read by the Hub and `datasets`)
    manifest.json                          identity, seeds, sizes, return stats, shard sha256s,
                                           content hashes, labeled subsets (see build_manifest)
    data/train-00000-of-00001.parquet      one row per step, one row group per trajectory
    data/eval-00000-of-00001.parquet

Row schema (lossless): ``episode`` int32 (trajectory index in the split), ``step`` int32, ``seed``
int64 (episode seed), ``obs`` ``fixed_size_binary[12288]`` (the raw bytes of the 64x64x3 uint8
frame seen before the action, HWC), ``action`` fixed-size list float32, ``reward`` float32, ``state``
fixed-size list float32 (proprioceptive state; debug only). Frames are never lossy-compressed;
shards use zstd (level :data:`ZSTD_LEVEL`).

Why raw bytes and not a ``list<uint8>``: Parquet has no 8-bit physical type, so a uint8 list is
stored as INT32 values; measured on real 64px distractor frames (zstd 6) the list compresses 2.1x,
the fixed-size binary 4.8x, and it encodes ~5x / decodes ~20x faster; through ``datasets`` the
binary column gathers ~215k frames/s vs ~58k for the list (benchmarks/RESULTS-data.md).

With the ``datasets`` library::

    ds = datasets.load_dataset("parquet", data_files="data/train-*.parquet", split="train")
    frames = frames_from_arrow(ds.with_format("arrow")[0:1000]["obs"])   # (1000, 64, 64, 3) uint8
    # or, without dcsbench: np.frombuffer(ds[0]["obs"], np.uint8).reshape(64, 64, 3)

Content hash: sha256 over the *decoded* arrays (frames, actions, rewards, states of every
trajectory in order), so it does not depend on Parquet encoding details; shards are additionally
pinned by the sha256 of their bytes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from dcsbench import catalogue

#: Version of this on-disk format (bumped on incompatible layout changes).
FORMAT_VERSION = 1

#: Splits stored in a dataset, in canonical order.
SPLITS: tuple[str, ...] = ("train", "eval")

#: Frame shape (H, W, C), uint8.
FRAME_SHAPE = (catalogue.IMAGE_SIZE, catalogue.IMAGE_SIZE, 3)
FRAME_BYTES = int(np.prod(FRAME_SHAPE))

#: zstd level of the shards. Measured on 300 real cheetah-run frames (benchmarks/RESULTS-data.md):
#: level 1 / 3 / 6 / 9 compress distractor frames 1.3x / 1.6x / 2.1x / 2.2x and clean frames
#: 5.0x / 5.9x / 8.0x / 8.7x; 6 keeps writing at tens of MB/s per core.
ZSTD_LEVEL = 6

#: Target uncompressed bytes of frames per shard (a shard holds whole trajectories).
SHARD_TARGET_BYTES = 256 * 1024 * 1024

MANIFEST = "manifest.json"
CARD = "README.md"
DATA_DIR = "data"


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def sha256_json(obj) -> str:
    """Hex sha256 of the canonical JSON of ``obj`` (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


class ContentHasher:
    """Incremental content hash of one split: feed trajectories in order with :meth:`add`."""

    def __init__(self) -> None:
        self._h = hashlib.sha256()
        self.n = 0

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray, states: np.ndarray) -> None:
        """Add one trajectory (arrays as stored: uint8 frames, float32 the rest)."""
        self._h.update(np.int64(len(obs)).tobytes())
        for a, dt in ((obs, np.uint8), (actions, np.float32), (rewards, np.float32), (states, np.float32)):
            a = np.ascontiguousarray(a, dtype=np.dtype(dt).newbyteorder("<"))
            self._h.update(np.int64(a.size).tobytes())
            self._h.update(memoryview(a).cast("B"))
        self.n += 1

    def hexdigest(self) -> str:
        return self._h.hexdigest()


def combine_hashes(split_hashes: dict[str, str]) -> str:
    """Dataset content hash from the per-split content hashes (canonical split order)."""
    return hashlib.sha256("".join(f"{s}:{split_hashes[s]};" for s in SPLITS if s in split_hashes)
                          .encode()).hexdigest()


# ---------------------------------------------------------------------------------------------
# Labeled subsets


def labeled_permutation(n_train: int, seed: int = catalogue.LABELED_PERMUTATION_SEED) -> list[int]:
    """The published permutation of train-trajectory ids; ``labeled-{B}`` is its first B entries."""
    return [int(i) for i in np.random.default_rng(seed).permutation(n_train)]


def labeled_subset_hash(budget: int, ids: list[int]) -> str:
    """sha256 identifying the labeled subset of one budget (``labeled-{B}:`` + comma-joined ids)."""
    return hashlib.sha256(f"labeled-{budget}:{','.join(str(int(i)) for i in ids)}".encode()).hexdigest()


def labeled_subsets(n_train: int, budgets: Iterable[int]) -> dict:
    """Manifest entry of the nested labeled subsets (budgets larger than ``n_train`` are dropped)."""
    perm = labeled_permutation(n_train)
    out = {}
    for b in sorted(int(b) for b in budgets):
        if b <= n_train:
            ids = perm[:b]
            out[str(b)] = {"ids": ids, "sha256": labeled_subset_hash(b, ids)}
    return {"permutation_seed": catalogue.LABELED_PERMUTATION_SEED, "budgets": out}


# ---------------------------------------------------------------------------------------------
# Parquet shards


def arrow_schema(action_dim: int, state_dim: int):
    """The pyarrow schema of a shard."""
    import pyarrow as pa

    return pa.schema([
        ("episode", pa.int32()),
        ("step", pa.int32()),
        ("seed", pa.int64()),
        ("obs", pa.binary(FRAME_BYTES)),
        ("action", pa.list_(pa.float32(), action_dim)),
        ("reward", pa.float32()),
        ("state", pa.list_(pa.float32(), state_dim)),
    ], metadata={"dcsbench.format_version": str(FORMAT_VERSION),
                 "dcsbench.frame_shape": json.dumps(list(FRAME_SHAPE))})


def real_float32(a, what: str) -> np.ndarray:
    """``a`` as a float32 array, refusing complex or non-numeric input: a cast would drop the
    imaginary part (or fail obscurely) without a word. ``what`` names the data in the error."""
    a = np.asarray(a)
    if np.iscomplexobj(a) or a.dtype.kind not in "biuf":
        raise ValueError(f"{what} must be real numbers, got dtype {a.dtype}")
    return a.astype(np.float32, copy=False)


def episode_table(episode: int, ep: dict, schema):
    """One trajectory as a pyarrow Table (one row per step)."""
    import pyarrow as pa

    obs = np.ascontiguousarray(ep["obs"], dtype=np.uint8)
    t = len(obs)
    if obs.shape[1:] != FRAME_SHAPE:
        raise ValueError(f"frames must be (T, {', '.join(map(str, FRAME_SHAPE))}), got {obs.shape}")

    def fsl(a, dtype, width, what):
        a = np.ascontiguousarray(real_float32(a, f"trajectory {episode}: {what}")).reshape(t, width)
        return pa.FixedSizeListArray.from_arrays(pa.array(a.reshape(-1)), width)

    cols = [
        pa.array(np.full(t, episode, np.int32)),
        pa.array(np.arange(t, dtype=np.int32)),
        pa.array(np.full(t, int(ep["seed"]), np.int64)),
        pa.FixedSizeBinaryArray.from_buffers(pa.binary(FRAME_BYTES), t, [None, pa.py_buffer(obs)]),
        fsl(ep["actions"], np.float32, schema.field("action").type.list_size, "actions"),
        pa.array(real_float32(ep["rewards"], f"trajectory {episode}: rewards").reshape(t)),
        fsl(ep["states"], np.float32, schema.field("state").type.list_size, "states"),
    ]
    return pa.Table.from_arrays(cols, schema=schema)


def shard_plan(n_trajectories: int, trajectory_length: int) -> list[range]:
    """Split trajectory indices into shards of ~:data:`SHARD_TARGET_BYTES` of raw frames each."""
    per = max(1, SHARD_TARGET_BYTES // max(1, trajectory_length * FRAME_BYTES))
    return [range(s, min(s + per, n_trajectories)) for s in range(0, n_trajectories, per)]


def shard_name(split: str, index: int, count: int) -> str:
    """Hub-style shard path, e.g. ``data/train-00000-of-00004.parquet``."""
    return f"{DATA_DIR}/{split}-{index:05d}-of-{count:05d}.parquet"


def write_shard(path: Path, episodes: Iterable[tuple[int, dict]], schema) -> dict:
    """Write ``(episode_index, episode_dict)`` pairs to one Parquet file (one row group each).

    Returns ``{"rows", "n_trajectories"}``. The caller makes the write atomic (temp dir + rename).
    """
    import pyarrow.parquet as pq

    rows = n = 0
    with pq.ParquetWriter(str(path), schema, compression="zstd",
                          compression_level=ZSTD_LEVEL, use_dictionary=False,
                          write_statistics=["episode", "step", "seed"]) as w:
        for idx, ep in episodes:
            table = episode_table(idx, ep, schema)
            w.write_table(table, row_group_size=len(table))
            rows += len(table)
            n += 1
    return {"rows": rows, "n_trajectories": n}


def frames_from_arrow(col) -> np.ndarray:
    """Frames ``(N, 64, 64, 3)`` uint8 from an Arrow ``fixed_size_binary[12288]`` column (chunked
    or not, sliced or not), e.g. ``ds.with_format("arrow")[i:j]["obs"]`` of the ``datasets`` library."""
    chunks = col.chunks if hasattr(col, "chunks") else [col]
    parts = []
    for c in chunks:
        if c.null_count:
            raise ValueError("frame column has missing values")
        width = c.type.byte_width
        parts.append(np.frombuffer(c.buffers()[1], np.uint8, count=len(c) * width,
                                   offset=c.offset * width))
    flat = np.concatenate(parts) if len(parts) != 1 else parts[0]
    return flat.reshape((-1, *FRAME_SHAPE))


def _fsl_numpy(col, dtype, width: int) -> np.ndarray:
    """Flatten a (chunked) fixed-size-list column into a ``(rows, width)`` numpy array."""
    chunks = col.chunks if hasattr(col, "chunks") else [col]
    parts = [np.asarray(c.flatten().to_numpy(zero_copy_only=False), dtype=dtype) for c in chunks]
    flat = np.concatenate(parts) if len(parts) != 1 else parts[0]
    return flat.reshape(-1, width)


def read_shard(path: str | Path) -> Iterator[dict]:
    """Decode a shard: yields one dict per trajectory (``episode``, ``seed``, ``obs`` (T,64,64,3)
    uint8, ``actions``, ``rewards``, ``states``), checking steps are 0..T-1 in order."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(str(path))
    a_dim = pf.schema_arrow.field("action").type.list_size
    s_dim = pf.schema_arrow.field("state").type.list_size
    for g in range(pf.num_row_groups):
        t = pf.read_row_group(g)
        episode = t.column("episode").to_numpy()
        step = t.column("step").to_numpy()
        if len(t) == 0 or (episode != episode[0]).any() or (step != np.arange(len(t))).any():
            raise ValueError(f"{Path(path).name}: row group {g} is not one whole trajectory in order")
        yield {
            "episode": int(episode[0]),
            "seed": int(t.column("seed")[0].as_py()),
            "obs": frames_from_arrow(t.column("obs")),
            "actions": _fsl_numpy(t.column("action"), np.float32, a_dim),
            "rewards": t.column("reward").to_numpy().astype(np.float32),
            "states": _fsl_numpy(t.column("state"), np.float32, s_dim),
        }


# ---------------------------------------------------------------------------------------------
# Manifest and dataset card


def return_stats(returns: list[float]) -> dict:
    """Summary of episode returns."""
    r = np.asarray(returns, dtype=np.float64)
    return {"mean": float(r.mean()), "std": float(r.std()), "min": float(r.min()),
            "max": float(r.max()), "per_trajectory": [round(float(x), 4) for x in r]}


def load_manifest(path: str | Path) -> dict:
    """Read and sanity-check a manifest file."""
    path = Path(path)
    if path.stat().st_size > 50_000_000:
        raise ValueError(f"{path}: manifest too large")
    m = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(m, dict) or m.get("format") != "dcsbench-dataset":
        raise ValueError(f"{path}: not a dcsbench dataset manifest")
    if m.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {m.get('format_version')}, this dcsbench reads "
                         f"{FORMAT_VERSION}")
    return m


def manifest_text(manifest: dict) -> str:
    """Canonical text of a manifest (what is hashed and pinned in the catalogue)."""
    return json.dumps(manifest, indent=1, sort_keys=True) + "\n"


def card_text(m: dict, preview: dict | None = None, repo_id: str | None = None) -> str:
    """Dataset card (README.md) with a YAML header for the Hub and the ``datasets`` library.

    Args:
        m: the manifest.
        preview: the preview config written by :func:`dcsbench.data.hub.build_preview`
            (``{"dir", "splits": {split: {"trajectories", "frames_per_trajectory", "rows"}}}``);
            adds a ``preview`` config (frames as an ``Image`` feature) the dataset viewer can show.
        repo_id: the Hub repo, for the loading snippet (default a placeholder).
    """
    import yaml

    header = {
        "license": "apache-2.0",
        "pretty_name": m["name"],
        "tags": ["dcsbench", "distracting-control-suite", "latent-action-learning", "robotics"],
        "task_categories": ["reinforcement-learning"],
        "configs": [{"config_name": "default", "data_files": [
            {"split": s, "path": f"{DATA_DIR}/{s}-*.parquet"} for s in SPLITS if s in m["splits"]]}]
        + ([{"config_name": "preview", "data_files": [
            {"split": s, "path": f"{preview['dir']}/{s}-*.parquet"} for s in SPLITS
            if s in preview["splits"]]}] if preview else []),
        "dcsbench": {
            "protocol_version": m["protocol_version"], "format_version": m["format_version"],
            "name": m["name"], "task": m["task"], "setting": m["setting"], "tier": m["tier"],
            "source": m["source"], "protocol_compliant": m["protocol_compliant"],
            "content_hash": m["content_hash"],
        },
    }
    lines = ["---", yaml.safe_dump(header, sort_keys=False).rstrip(), "---", "",
             f"# {m['name']}", "",
             f"Offline dataset of the dcsbench benchmark (protocol v{m['protocol_version']}): task "
             f"`{m['task']}`, setting `{m['setting']}`, background source `{m['source']}`.", "",
             "| split | trajectories | steps each | backgrounds | seeds | mean return |",
             "|---|---|---|---|---|---|"]
    for s, info in m["splits"].items():
        seeds = info["seeds"]
        lines.append(f"| {s} | {info['n_trajectories']} | {info['trajectory_length']} | "
                     f"{info['pool']} | {seeds[0]}..{seeds[-1]} | {info['returns']['mean']:.1f} |")
    budgets = ", ".join(m["labeled_subsets"]["budgets"])
    if m["labeled_subsets"].get("kind") == "laom-release":
        labeled = (f"Labeled subsets `labeled-{{B}}` for B in {{{budgets}}}: the LAOM authors' labeled "
                   "files, mapped to train ids through their `original_traj_idx` attributes; ids and "
                   "hashes in `manifest.json`.")
    else:
        labeled = (f"Labeled subsets `labeled-{{B}}` for B in {{{budgets}}}: the first B ids of one "
                   f"permutation seeded {m['labeled_subsets']['permutation_seed']} (nested); ids and "
                   "hashes in `manifest.json`.")
    lines += ["",
              f"Behaviour policy: `{m['policy']['kind']}` ({m['policy'].get('card_id') or 'n/a'}).",
              labeled,
              "", "Each row is one step: `obs` (the 12288 raw bytes of the 64x64x3 uint8 frame, HWC, "
              "seen before the action), `action`, `reward`, `state` (simulator state, debug only), "
              "`episode`, `step`, `seed`. Read with `dcsbench.load_dataset(name, split=...)`, or with "
              "`datasets`: `np.frombuffer(row[\"obs\"], np.uint8).reshape(64, 64, 3)`.", "",
              f"Content hash (decoded arrays): `{m['content_hash']}`.", ""]
    repo = repo_id or f"ORG/{m['name']}"
    lines += ["## Loading", "", "```python", "import numpy as np, datasets", "",
              "# the full data, lossless: one row per step, frames as raw bytes",
              f"ds = datasets.load_dataset(\"{repo}\", split=\"train\")",
              "frame = np.frombuffer(ds[0][\"obs\"], np.uint8).reshape(64, 64, 3)",
              "# fast: frames = dcsbench.data.format.frames_from_arrow(ds.with_format(\"arrow\")[0:1000][\"obs\"])"]
    if preview:
        lines += ["", "# a look at the data: a few frames per trajectory as images (PIL)",
                  f"pv = datasets.load_dataset(\"{repo}\", \"preview\", split=\"train\")",
                  "pv[0][\"image\"]"]
    lines += ["", "# or, with dcsbench (downloads, verifies, memory-maps):",
              "# dcsbench.load_dataset(NAME, split=\"labeled-8\")", "```", ""]
    if preview:
        per = next(iter(preview["splits"].values()))
        lines += [f"The `preview` config (`{preview['dir']}/`) holds {per['frames_per_trajectory']} "
                  "evenly spaced frames of up to "
                  f"{per['trajectories']} trajectories per split as PNG images (`image`, lossless), "
                  "with `episode`, `step`, `seed`, `action`, `reward`, so that the Hub's dataset viewer "
                  "shows pictures; it is derived from the data and not part of the content hash.", ""]
    if not m["protocol_compliant"]:
        lines += ["**Not protocol-compliant** (non-default size or episode length): do not report "
                  "leaderboard results on it.", ""]
    return "\n".join(lines)
