"""The one way esc-bench writes a whole file: a temporary sibling, then a rename."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def write_atomic(path: Path, data: bytes | str) -> None:
    """Write `data` (str as UTF-8) to `path`, parents made: a reader sees the old file or the new one,
    never half of one; on any failure the old file stays and the temporary one is removed. The file
    gets the usual permissions (0666 less the umask), as a plain open would give it."""
    path = Path(path)
    if isinstance(data, str):  # text we wrote (bytes are downloads, checked against their sha256)
        from esc_bench.redact import redact

        data = redact(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
