"""Real HTTP servers on loopback for tests that read STAC, rasters or models over http."""

from __future__ import annotations

import contextlib
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


@contextlib.contextmanager
def loopback_process(command: Callable[[int], list[str]], what: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run `command(port)` (a server on a free loopback port) and yield its base URL once it answers.

    Servers run in their own process: GDAL holds the GIL while it reads, which would starve a server
    thread in the test process.
    """
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(command(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(base, timeout=1)
                break
            except urllib.error.HTTPError:  # it answers
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError(f"{what} did not start")
        yield base
    finally:
        server.kill()
        server.wait()


def static_server(directory: Path) -> contextlib.AbstractContextManager[str]:
    """Serve `directory` and yield its base URL."""
    return loopback_process(lambda port: [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                          "--directory", str(directory)], f"http server for {directory}")


@dataclass
class Request:
    """One request the counting server answered."""

    method: str
    path: str
    range: str | None
    sent: int  # body bytes sent


@dataclass
class CountingServer:
    """A loopback file server that records every request and can drop a response part way."""

    base: str
    requests: list[Request] = field(default_factory=list)
    cut_after: dict[str, int] = field(default_factory=dict)  # path -> bytes to send before closing (once)

    def gets(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and r.path == path]


def _handler(directory: Path, server: CountingServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            file = directory / self.path.lstrip("/").split("?")[0]
            if not file.is_file():
                server.requests.append(Request("GET", self.path, self.headers.get("Range"), 0))
                self.send_error(404)
                return
            data = file.read_bytes()
            start, end, status = 0, len(data), 200
            match = re.match(r"bytes=(\d+)-(\d*)$", self.headers.get("Range") or "")
            if match:
                start, status = int(match.group(1)), 206
                end = min(int(match.group(2)) + 1, len(data)) if match.group(2) else len(data)
            body = data[start:end]
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            self.end_headers()
            cut = server.cut_after.pop(self.path, None)
            sent = body if cut is None else body[:cut]
            # recorded before the body goes out: the client may look at the record as soon as it has the body
            server.requests.append(Request("GET", self.path, self.headers.get("Range"), len(sent)))
            self.wfile.write(sent)
            if cut is not None:
                self.close_connection = True

        def do_HEAD(self) -> None:  # GDAL asks a file's size first
            file = directory / self.path.lstrip("/").split("?")[0]
            if not file.is_file():
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(file.stat().st_size))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()

    return Handler


@contextlib.contextmanager
def counting_server(directory: Path) -> Iterator[CountingServer]:
    """Serve `directory` from a thread (HTTP/1.1, byte ranges) and count what is asked.

    Only for downloads made with Python sockets (requests releases the GIL), or GDAL reads in another process;
    GDAL reads in this one need `static_server`.
    """
    state = CountingServer("")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(directory, state))
    state.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    with _serving(httpd):
        yield state


@contextlib.contextmanager
def _serving(httpd: ThreadingHTTPServer, stopping: threading.Event | None = None) -> Iterator[None]:
    """Serve on a daemon thread for the block; then set `stopping` (ends trickling answers) and shut down."""
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield
    finally:
        if stopping is not None:
            stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


@contextlib.contextmanager
def scripted_server(routes: dict[str, tuple]) -> Iterator[str]:
    """A loopback HTTP server answering GET/POST `path` with (status, content type, body[, seconds]); `{base}`
    in a body becomes the server's URL; with `seconds` the body trickles out over that time (a download to
    interrupt). Unknown paths get 404. It stops when the block ends.

    For STAC API answers that are not what the specification promises (HTML, arrays, truncated JSON).
    """
    stopping = threading.Event()

    class Handler(BaseHTTPRequestHandler):
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

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    with _serving(server, stopping):
        yield base
@contextlib.contextmanager
def s3_server(bucket: str) -> Iterator[str]:
    """A moto S3 server on loopback with `bucket` created; yields its endpoint URL.

    Credentials are moto's fake ones, set in the environment for the caller and its children.
    """
    import os

    import boto3
    from moto.server import ThreadedMotoServer

    fake = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {key: os.environ.get(key) for key in fake}
    os.environ.update(fake)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def download_prefix(endpoint: str, bucket: str, prefix: str, target: Path) -> dict[str, str]:
    """Every object under s3://bucket/prefix into `target` (same relative paths); returns key -> content type."""
    import boto3

    client = boto3.client("s3", endpoint_url=endpoint)
    types = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for entry in page.get("Contents", []):
            key = entry["Key"]
            path = target / key[len(prefix):].lstrip("/")
            path.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(path))
            types[key] = client.head_object(Bucket=bucket, Key=key)["ContentType"]
    return types
