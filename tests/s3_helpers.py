"""A moto S3 server on loopback, the stand-in for an object store (S3 itself cannot exist here).

It runs in its own process: GDAL holds the GIL while it opens a dataset, which would starve a server
thread in the test process.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

_SERVE = ("import time; from moto.server import ThreadedMotoServer; "
          "server = ThreadedMotoServer(ip_address='127.0.0.1', port={port}, verbose=False); server.start(); "
          "time.sleep(600)")  # stops by itself should the test process die without killing it
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """Start a moto S3 server and yield its endpoint URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-c", _SERVE.format(port=port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                urllib.request.urlopen(endpoint, timeout=1)
                break
            except urllib.error.HTTPError:
                break
            except OSError:
                time.sleep(0.1)
        else:
            raise RuntimeError("moto S3 server did not start")
        yield endpoint
    finally:
        server.kill()
        server.wait()


def s3_environment(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """The variables a user of an S3-compatible store sets: credentials and the endpoint."""
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    for key in ("AWS_S3_ENDPOINT", "AWS_NO_SIGN_REQUEST", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
