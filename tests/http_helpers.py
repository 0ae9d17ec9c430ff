"""A real static HTTP server on loopback for tests that read STAC, rasters or models over http."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def static_server(directory: Path) -> Iterator[str]:
    """Serve `directory` and yield its base URL.

    The server runs in its own process: GDAL holds the GIL while it reads, which would starve a
    server thread in the test process.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                               "--directory", str(directory)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(base, timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"http server for {directory} did not start")
        yield base
    finally:
        server.kill()
        server.wait()
