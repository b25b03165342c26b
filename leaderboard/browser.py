"""Headless Chromium helpers: serve a site on 127.0.0.1, dump its DOM, take a screenshot.

Used by the leaderboard tests (proof that nothing from a submission executes) and by
``dcsbench leaderboard build --screenshot studies/results/NAME/leaderboard.png``. Chromium runs
with a throwaway profile and every background-networking feature off; pages are served by
``http.server`` bound to 127.0.0.1 on a free port, so nothing leaves the machine.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import os
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path
from typing import Iterator

#: Flags for a sandbox-friendly, offline headless Chromium.
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--mute-audio")


def find_chromium() -> str | None:
    """Path of a Chromium binary (``$DCSBENCH_CHROMIUM``, ``chromium``, ``chromium-browser``,
    ``google-chrome``), or None."""
    env = os.environ.get("DCSBENCH_CHROMIUM")
    if env:
        return env
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def serve(folder: str | os.PathLike) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (free port) in a thread; yields the base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


def run_chromium(url: str, *args: str, timeout: float = 90.0) -> subprocess.CompletedProcess:
    """Run headless Chromium on ``url`` with extra ``args`` and a fresh temporary profile."""
    exe = find_chromium()
    if exe is None:
        raise FileNotFoundError("no Chromium found (install chromium or set DCSBENCH_CHROMIUM)")
    with tempfile.TemporaryDirectory(prefix="dcsbench-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args, url]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


def dump_dom(url: str, budget_ms: int = 3000) -> str:
    """The DOM after scripts ran (``--dump-dom``; ``budget_ms`` of virtual time for timers)."""
    proc = run_chromium(url, f"--virtual-time-budget={budget_ms}", "--dump-dom")
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise RuntimeError(f"chromium --dump-dom failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return proc.stdout


def screenshot(url: str, png: str | os.PathLike, width: int = 1280, height: int = 1500) -> Path:
    """Save a ``width`` x ``height`` screenshot of ``url`` to ``png`` (written atomically)."""
    png = Path(png)
    png.parent.mkdir(parents=True, exist_ok=True)
    tmp = png.with_name(f".{png.stem}.tmp.png")
    proc = run_chromium(url, f"--window-size={width},{height}", "--virtual-time-budget=3000",
                        f"--screenshot={tmp}")
    if not tmp.exists() or tmp.stat().st_size == 0:
        raise RuntimeError(f"chromium --screenshot failed ({proc.returncode}): {proc.stderr[-2000:]}")
    os.replace(tmp, png)
    return png


def screenshot_site(site: str | os.PathLike, png: str | os.PathLike, width: int = 1280,
                    height: int = 1500) -> Path:
    """Serve a built site on 127.0.0.1 and screenshot its ``index.html``."""
    with serve(site) as base:
        return screenshot(base + "index.html", png, width, height)
