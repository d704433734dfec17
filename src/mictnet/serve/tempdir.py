"""The server's own temporary folder: uploads live there, and a server that starts removes what
a killed one left behind.

Every server of a user shares ``TMP/mict-serve-UID/`` (mode 0700); each takes its own
``run-*`` folder in it and holds an exclusive lock on the ``lock`` file inside while it runs (the
kernel releases it however the process ends). At start, a server removes the ``run-*`` folders
whose lock nobody holds: only those, never another file of the temp folder, never a running
server's.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from pathlib import Path
from typing import IO

try:
    import fcntl
except ImportError:  # Windows: no advisory locks, stale folders stay
    fcntl = None

LOCK = "lock"
RUN_PREFIX = "run-"
UPLOAD_PREFIX = "mict-upload-"
YOUNG_SECONDS = 60.0  # a run folder without its lock file yet may be a server just starting


def _locked(handle: IO[str]) -> bool:
    """Take the exclusive lock of ``handle``; ``False`` when another process holds it."""
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _stale(folder: Path) -> bool:
    """No running server holds ``folder``'s lock (the lock is held until the folder is gone)."""
    lock = folder / LOCK
    if not lock.exists():
        return time.time() - folder.stat().st_mtime > YOUNG_SECONDS
    with open(lock, "a") as handle:
        return _locked(handle)


class UploadFolder:
    """This server's ``run-*`` folder under ``base`` (default: the system temp folder);
    ``removed`` counts the upload files of dead servers deleted when it was made."""

    def __init__(self, base: str | Path | None = None) -> None:
        uid = os.getuid() if hasattr(os, "getuid") else 0
        root = Path(base or tempfile.gettempdir()) / f"mict-serve-{uid}"
        root.mkdir(mode=0o700, exist_ok=True)
        info = root.lstat()
        if not stat.S_ISDIR(info.st_mode) or (hasattr(os, "getuid") and info.st_uid != uid):
            raise OSError(f"{root}: not a folder of this user; refusing to keep uploads there")
        self.root = root
        self.removed = self._clean() if fcntl is not None else 0
        self.path = Path(tempfile.mkdtemp(prefix=RUN_PREFIX, dir=root))
        self._lock: IO[str] | None = open(self.path / LOCK, "w")  # noqa: SIM115 (held open)
        if fcntl is not None:
            _locked(self._lock)

    def _clean(self) -> int:
        removed = 0
        for folder in self.root.glob(f"{RUN_PREFIX}*"):
            try:
                if folder.is_dir() and not folder.is_symlink() and _stale(folder):
                    removed += sum(1 for _ in folder.glob(f"{UPLOAD_PREFIX}*"))
                    shutil.rmtree(folder)
            except OSError:  # another server cleaning at the same moment
                continue
        return removed

    def close(self) -> None:
        """Remove this server's folder (and any upload still in it)."""
        shutil.rmtree(self.path, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None
