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


@contextlib.contextmanager
def scripted_server(routes: dict[str, tuple]) -> Iterator[str]:
    """A loopback HTTP server answering GET/POST `path` with (status, content type, body[, seconds]); `{base}`
    in a body becomes the server's URL; with `seconds` the body trickles out over that time (a download to
    interrupt). Unknown paths get 404. It stops when the block ends.

    For STAC API answers that are not what the specification promises (HTML, arrays, truncated JSON).
    """
    import http.server
    import threading

    stopping = threading.Event()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            if length:
                self.rfile.read(length)
            status, content_type, body, *trickle = routes.get(self.path.split("?")[0], (404, "text/plain", b"no"))
            body = body.replace(b"{base}", base.encode())
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            pieces = 50 if trickle else 1
            step = -(-len(body) // pieces)
            try:
                for start in range(0, len(body), step):
                    self.wfile.write(body[start:start + step])
                    self.wfile.flush()
                    if trickle and stopping.wait(trickle[0] / pieces):
                        return
            except OSError:  # the client went away (e.g. it was killed mid-download)
                return

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args) -> None:  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield base
    finally:
        stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()
