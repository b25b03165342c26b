"""Packing a study folder for the trip back from a lent machine: at most 8 files of at most
16 MiB (64 MiB together), records first, then the ``.work/`` checkpoints of unfinished runs
(largest dropped first when over budget, listed in ``pack.json``), and unpacking them on another
machine without letting a path leave the folder."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import tarfile
import tempfile
import time
from pathlib import Path

#: What a lent device machine returns: at most 8 files of at most 16 MiB, 64 MiB together.
MAX_FILES, MAX_FILE_BYTES, MAX_TOTAL_BYTES = 8, 16 * 2**20, 64 * 2**20


def _log(msg: str) -> None:
    print(f"[study] {msg}", file=sys.stderr, flush=True)



def _members(out: Path, work: bool) -> list[Path]:
    """Files of the study folder: outside ``.work/`` folders (``work=False``) or inside."""
    files = []
    for p in sorted(out.rglob("*")):
        if not p.is_file() or p.is_symlink():
            continue
        inside = ".work" in p.relative_to(out).parts
        if inside == work:
            files.append(p)
    return files


def _tar_gz(out: Path, files: list[Path], dest: Path) -> int:
    with tarfile.open(dest, "w:gz", compresslevel=6) as tar:
        for f in files:
            tar.add(f, arcname=f.relative_to(out).as_posix(), recursive=False)
    return dest.stat().st_size


def _split(path: Path, max_bytes: int) -> list[Path]:
    """Split ``path`` into ``path.partNN`` files of at most ``max_bytes`` (itself if it fits)."""
    size = path.stat().st_size
    if size <= max_bytes:
        return [path]
    parts = []
    with open(path, "rb") as f:
        i = 0
        while chunk := f.read(max_bytes):
            part = path.with_name(f"{path.name}.part{i:02d}")
            part.write_bytes(chunk)
            parts.append(part)
            i += 1
    path.unlink()
    return parts


def pack(out: str | os.PathLike, dest: str | os.PathLike, max_files: int = MAX_FILES,
         max_bytes: int = MAX_FILE_BYTES, max_total: int = MAX_TOTAL_BYTES) -> list[Path]:
    """Pack a study folder into at most ``max_files`` files of at most ``max_bytes`` each.

    ``records.tar.gz`` holds everything outside ``.work/`` (records, references, status);
    ``work.tar.gz`` (split into ``.partNN`` files when larger than ``max_bytes``) the work
    folders of unfinished runs. When they do not fit, whole work folders are left out, largest
    first (those runs restart from scratch next time): ``pack.json`` inside ``records.tar.gz``
    lists what was dropped. Returns the files written (names: letters, digits, ``._-``).
    """
    out, dest = Path(out), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    for old in list(dest.glob("records.tar.gz*")) + list(dest.glob("work.tar.gz*")):
        old.unlink()
    work_files = _members(out, work=True)
    groups: dict[Path, list[Path]] = {}
    for f in work_files:
        parts = f.relative_to(out).parts
        i = parts.index(".work")
        groups.setdefault(out.joinpath(*parts[:i + 2]), []).append(f)
    kept = dict(sorted(groups.items(), key=lambda kv: sum(f.stat().st_size for f in kv[1])))
    dropped: list[str] = []
    with tempfile.TemporaryDirectory(dir=dest) as tmp:
        tmp = Path(tmp)
        while True:
            meta = {"format": 1, "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
                    "work_folders": [k.relative_to(out).as_posix() for k in kept],
                    "dropped_work_folders": dropped}
            rec_files = _members(out, work=False)
            rec_tar = tmp / "records.tar.gz"
            with tarfile.open(rec_tar, "w:gz", compresslevel=6) as tar:
                for f in rec_files:
                    tar.add(f, arcname=f.relative_to(out).as_posix(), recursive=False)
                raw = json.dumps(meta, indent=2).encode()
                ti = tarfile.TarInfo("pack.json")
                ti.size, ti.mtime = len(raw), int(time.time())
                tar.addfile(ti, io.BytesIO(raw))
            rec_size = rec_tar.stat().st_size
            work_size = 0
            if kept:
                work_tar = tmp / "work.tar.gz"
                work_size = _tar_gz(out, [f for fs in kept.values() for f in fs], work_tar)
            n_files = -(-rec_size // max_bytes) + (-(-work_size // max_bytes) if kept else 0)
            if (n_files <= max_files and rec_size + work_size <= max_total) or not kept:
                break
            big = max(kept, key=lambda k: sum(f.stat().st_size for f in kept[k]))
            dropped.append(big.relative_to(out).as_posix())
            del kept[big]
        if -(-rec_size // max_bytes) > max_files or rec_size > max_total:
            raise ValueError(f"the records of {out} alone ({rec_size / 2**20:.1f} MiB compressed) "
                             f"exceed {max_files} files of {max_bytes / 2**20:.0f} MiB")
        written = []
        for name in ("records.tar.gz", "work.tar.gz"):
            if (tmp / name).exists():
                shutil.move(str(tmp / name), dest / name)
                written += _split(dest / name, max_bytes)
    if dropped:
        _log(f"pack: {len(dropped)} work folder(s) left out (over the size limit): "
             + ", ".join(dropped))
    return written


def _archives(src: Path) -> dict[str, list[Path]]:
    """Archive name -> its files in order (``X.tar.gz`` or ``X.tar.gz.part00``, ...)."""
    files = sorted(src.iterdir()) if src.is_dir() else [src]
    out: dict[str, list[Path]] = {}
    for f in files:
        name = f.name
        if ".tar.gz.part" in name:
            out.setdefault(name.split(".part")[0], []).append(f)
        elif name.endswith(".tar.gz"):
            out.setdefault(name, []).append(f)
    return {k: sorted(v) for k, v in out.items()}


def unpack(src: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Restore :func:`pack`'s files (a folder of them, or one file) into the study folder.

    Records already present are kept (never overwritten); work folders are restored. Members
    with absolute paths, ``..`` or links are refused (``tarfile`` data filter). Returns the
    files written.
    """
    src, out = Path(src), Path(out)
    if not src.exists():
        raise FileNotFoundError(f"nothing to resume from: {src}")
    archives = _archives(src)
    if not archives:
        raise FileNotFoundError(f"{src}: no records.tar.gz / work.tar.gz files")
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for name, parts in archives.items():
        numbers = [p.name.rsplit(".part", 1)[1] for p in parts if ".part" in p.name]
        if numbers and numbers != [f"{i:02d}" for i in range(len(numbers))]:
            raise ValueError(f"{src}: parts of {name} are missing (have {numbers})")
        with tempfile.TemporaryFile() as joined:
            for p in parts:
                with open(p, "rb") as f:
                    shutil.copyfileobj(f, joined)
            joined.seek(0)
            with tarfile.open(fileobj=joined, mode="r:gz") as tar:
                for m in tar.getmembers():
                    if m.name == "pack.json":
                        continue
                    parts = Path(m.name).parts
                    if Path(m.name).is_absolute() or ".." in parts or not (m.isfile() or m.isdir()):
                        raise tarfile.OutsideDestinationError(m, str(out / m.name))
                    target = out / m.name
                    if target.exists() and ".work" not in Path(m.name).parts:
                        continue  # a record here wins over the packed copy
                    tar.extract(m, out, filter="data")
                    if m.isfile():
                        written.append(target)
    return written
