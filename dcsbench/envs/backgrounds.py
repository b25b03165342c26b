"""Background-video sources and DCS-style playback.

A *source* provides two disjoint pools of short videos, ``train`` and ``novel``, each frame
64x64x3 uint8 (:class:`BackgroundSource`). Two sources exist:

* ``procedural`` (:class:`ProceduralSource`, default, embedded): 60 train / 30 novel clips from
  :mod:`dcsbench.envs.procedural`, generated on first use (~0.4 s of numpy per clip), kept in a
  small per-process cache and in a disk cache shared by all processes
  (:func:`clip_cache_dir`), so evaluation and collection workers load each clip instead of
  generating it again at every reset.
* ``davis`` (:class:`DavisSource`): DAVIS-2017 frames from a folder the user downloaded; the
  ``train`` pool is the 60 videos of ``ImageSets/2017/train.txt``, ``novel`` the 30 of
  ``val.txt`` (as in the Distracting Control Suite).

Playback (:class:`BackgroundPlayer`) follows the Distracting Control Suite: at reset a video is
drawn from the pool with the episode RNG, playback starts at a random frame in a random
direction and bounces back and forth (ping-pong) through the clip, one frame per control step.
"""

from __future__ import annotations

import hashlib
import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from dcsbench.paths import default_root
from dcsbench.catalogue import POOLS, SOURCES, check_choice

from . import procedural

#: Pool sizes of the embedded procedural source (PROTOCOL.md section 1).
PROCEDURAL_POOL_SIZES = {"train": 60, "novel": 30}

#: Clips kept in memory per source object (each 64x64 clip is ~1 MB).
CACHE_CLIPS = 24


class BackgroundSource:
    """A set of background videos split into the pools ``train`` and ``novel``.

    Subclasses implement :meth:`videos` (ids of a pool, in a fixed order) and :meth:`_load`
    (frames of one video). :meth:`clip` adds a small LRU cache.
    """

    name = "base"

    def __init__(self, size: int = 64):
        self.size = size
        self._cache: OrderedDict = OrderedDict()

    def videos(self, pool: str) -> list[str]:
        """Video ids of ``pool`` (``train`` or ``novel``), in a fixed, documented order."""
        raise NotImplementedError

    def _load(self, pool: str, video: str) -> np.ndarray:
        raise NotImplementedError

    def clip(self, pool: str, index: int) -> np.ndarray:
        """Frames (T, size, size, 3) uint8 of video ``index`` of ``pool`` (read-only, cached)."""
        check_choice("background pool", pool, POOLS)
        ids = self.videos(pool)
        key = (pool, ids[index])
        frames = self._cache.get(key)
        if frames is None:
            frames = np.ascontiguousarray(self._load(pool, ids[index]), dtype=np.uint8)
            frames.setflags(write=False)
            self._cache[key] = frames
            while len(self._cache) > CACHE_CLIPS:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return frames


def clip_cache_dir() -> Path | None:
    """Folder of the disk cache of generated procedural clips, or ``None`` when disabled.

    ``$DCSBENCH_CLIP_CACHE`` (a folder, or ``off``), else ``clips/`` under the cache root
    (:func:`dcsbench.paths.default_root`). Files are keyed by the sha256 of the generator's source
    (:mod:`dcsbench.envs.procedural`), so a changed generator never reads old clips.
    """
    env = os.environ.get("DCSBENCH_CLIP_CACHE")
    if env is not None and env.strip().lower() in ("", "0", "off", "none", "false"):
        return None
    if env:
        return Path(env).expanduser()
    return default_root() / "clips"


_GENERATOR_KEY: str | None = None


def _generator_key() -> str:
    global _GENERATOR_KEY
    if _GENERATOR_KEY is None:
        _GENERATOR_KEY = hashlib.sha256(Path(procedural.__file__).read_bytes()).hexdigest()[:16]
    return _GENERATOR_KEY


class ProceduralSource(BackgroundSource):
    """The embedded, deterministic procedural videos (numpy only, no download)."""

    name = "procedural"

    def videos(self, pool: str) -> list[str]:
        check_choice("background pool", pool, POOLS)
        return [f"{pool}-{i:03d}" for i in range(PROCEDURAL_POOL_SIZES[pool])]

    def _load(self, pool: str, video: str) -> np.ndarray:
        index = int(video.rsplit("-", 1)[1])
        folder = clip_cache_dir()
        path = None
        if folder is not None:
            path = folder / f"procedural-{_generator_key()}" / f"{video}-{self.size}.npy"
            try:
                frames = np.load(path, mmap_mode="r", allow_pickle=False)
                if frames.dtype == np.uint8 and frames.shape[1:] == (self.size, self.size, 3):
                    return frames
            except (OSError, ValueError):
                pass   # missing or damaged: generate (and rewrite) it
        frames = procedural.generate_clip(pool, index, size=self.size)
        if path is not None:
            _write_clip(path, np.ascontiguousarray(frames, dtype=np.uint8))
        return frames


def _write_clip(path: Path, frames: np.ndarray) -> None:
    """Store a generated clip atomically (temp file + rename); a failure only costs speed."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(tmp, "wb") as f:
            np.save(f, frames, allow_pickle=False)
        os.replace(tmp, path)
    except OSError:
        pass
    finally:
        try:
            tmp.unlink()
        except OSError:
            pass


class DavisSource(BackgroundSource):
    """DAVIS-2017 videos from a user folder (not downloaded by dcsbench).

    Expected layout (the official ``DAVIS-2017-trainval-480p.zip`` unpacked)::

        <root>/JPEGImages/480p/<video>/00000.jpg ...
        <root>/ImageSets/2017/train.txt   (60 video names, the ``train`` pool)
        <root>/ImageSets/2017/val.txt     (30 video names, the ``novel`` pool)

    Frames are resized to ``size`` x ``size`` with Pillow (bilinear, aspect not kept, as a skybox
    texture would be).
    """

    name = "davis"
    _LISTS = {"train": "train.txt", "novel": "val.txt"}

    def __init__(self, root: str | os.PathLike | None, size: int = 64):
        super().__init__(size)
        if root is None:
            root = os.environ.get("DCSBENCH_DAVIS_DIR")
        if not root:
            raise FileNotFoundError(
                "the 'davis' background source needs the DAVIS-2017 folder: pass davis_dir=... "
                "(--davis-dir) or set DCSBENCH_DAVIS_DIR; it must contain JPEGImages/480p/<video>/"
                "*.jpg and ImageSets/2017/train.txt and val.txt")
        self.root = Path(root).expanduser()
        self._pools: dict[str, list[str]] = {}
        for pool, fname in self._LISTS.items():
            listing = self.root / "ImageSets" / "2017" / fname
            if not listing.is_file():
                raise FileNotFoundError(
                    f"DAVIS folder {self.root}: missing {listing.relative_to(self.root)} (expected "
                    "JPEGImages/480p/<video>/*.jpg and ImageSets/2017/train.txt, val.txt)")
            names = [ln.strip() for ln in listing.read_text().splitlines() if ln.strip()]
            if not names:
                raise ValueError(f"DAVIS folder {self.root}: {listing.name} lists no videos")
            missing = [n for n in names if not (self.root / "JPEGImages" / "480p" / n).is_dir()]
            if missing:
                raise FileNotFoundError(
                    f"DAVIS folder {self.root}: {len(missing)} video folder(s) of {fname} missing "
                    f"under JPEGImages/480p/, e.g. {missing[0]!r}")
            self._pools[pool] = names
        overlap = set(self._pools["train"]) & set(self._pools["novel"])
        if overlap:
            raise ValueError(f"DAVIS train and val lists overlap: {sorted(overlap)[:5]}")

    def videos(self, pool: str) -> list[str]:
        check_choice("background pool", pool, POOLS)
        return list(self._pools[pool])

    def _load(self, pool: str, video: str) -> np.ndarray:
        from PIL import Image

        folder = self.root / "JPEGImages" / "480p" / video
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
        if not files:
            raise FileNotFoundError(f"DAVIS video folder {folder} has no .jpg frames")
        frames = np.empty((len(files), self.size, self.size, 3), np.uint8)
        for i, path in enumerate(files):
            with Image.open(path) as im:
                frames[i] = np.asarray(im.convert("RGB").resize(
                    (self.size, self.size), Image.Resampling.BILINEAR))
        return frames


_SOURCES: dict[tuple, BackgroundSource] = {}


def get_source(name: str = "procedural", davis_dir: str | os.PathLike | None = None,
               size: int = 64) -> BackgroundSource:
    """The (per-process shared) background source called ``name`` (``procedural`` or ``davis``)."""
    check_choice("background source", name, SOURCES)
    key = (name, str(davis_dir) if davis_dir is not None else os.environ.get("DCSBENCH_DAVIS_DIR"),
           size)
    if key not in _SOURCES:
        _SOURCES[key] = ProceduralSource(size) if name == "procedural" else DavisSource(
            davis_dir, size)
    return _SOURCES[key]


class BackgroundPlayer:
    """Plays one video of a pool per episode, ping-pong, one frame per control step."""

    def __init__(self, source: BackgroundSource, pool: str):
        self.source = source
        self.pool = check_choice("background pool", pool, POOLS)
        self.n_videos = len(source.videos(pool))
        self.video_index = 0
        self._frames = None
        self._t = 0
        self._dir = 1

    def reset(self, rng: np.random.Generator) -> None:
        """Choose the episode's video, start frame and direction."""
        self.video_index = int(rng.integers(self.n_videos))
        self._frames = self.source.clip(self.pool, self.video_index)
        self._t = int(rng.integers(len(self._frames)))
        self._dir = 1 if rng.uniform() < 0.5 else -1

    def step(self) -> None:
        """Advance one frame, bouncing at either end of the clip."""
        n = len(self._frames)
        if n == 1:
            return
        nxt = self._t + self._dir
        if not 0 <= nxt < n:
            self._dir = -self._dir
            nxt = self._t + self._dir
        self._t = nxt

    @property
    def frame(self) -> np.ndarray:
        """The current background frame (size, size, 3) uint8."""
        return self._frames[self._t]
