"""A loopback HTTP server that serves one folder, for sync tests; it counts requests.

    with StaticServer(folder) as server:
        urllib.request.urlopen(server.url + "/a.txt")
        assert server.count("/a.txt") == 1
"""

from __future__ import annotations

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Any


class _Handler(SimpleHTTPRequestHandler):
    server: "_Server"

    def do_GET(self) -> None:
        self.server.record(self.path)
        super().do_GET()

    def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, handler: Any) -> None:
        super().__init__(("127.0.0.1", 0), handler)
        self.lock = threading.Lock()
        self.requests: list[str] = []

    def record(self, path: str) -> None:
        with self.lock:
            self.requests.append(path)


class StaticServer:
    """Serves `root` on 127.0.0.1 (a free port) in a background thread while in a `with` block."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "StaticServer":
        handler = functools.partial(_Handler, directory=str(self.root))
        self._server = _Server(handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    @property
    def url(self) -> str:
        assert self._server is not None, "use StaticServer in a `with` block"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def requests(self) -> list[str]:
        """Paths requested so far, in order."""
        assert self._server is not None
        with self._server.lock:
            return list(self._server.requests)

    def count(self, path: str | None = None) -> int:
        """How many requests (for `path`, or in all)."""
        reqs = self.requests
        return len(reqs) if path is None else sum(1 for p in reqs if p == path)
