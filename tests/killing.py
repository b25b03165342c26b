"""Kill a subprocess part-way through its work (resume tests of downloads)."""

from __future__ import annotations

import signal
import subprocess
import time
from typing import Callable


def sigkill_when(proc: subprocess.Popen, ready: Callable[[], bool], timeout: float,
                 settle: float = 0.0) -> None:
    """Wait until ``ready()`` (at most ``timeout`` s), wait ``settle`` s more, then SIGKILL
    ``proc``. Fails if it ended by itself first; the process never outlives the call."""
    try:
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and not ready():
            time.sleep(0.02)
        time.sleep(settle)
        assert proc.poll() is None, "download finished (or failed) before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
