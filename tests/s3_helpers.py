"""A moto S3 server on loopback, the stand-in for an object store (S3 itself cannot exist here)."""

from __future__ import annotations

import contextlib
import sys

import pytest

from http_helpers import loopback_process

_SERVE = ("import time; from moto.server import ThreadedMotoServer; "
          "server = ThreadedMotoServer(ip_address='127.0.0.1', port={port}, verbose=False); server.start(); "
          "time.sleep(600)")  # stops by itself should the test process die without killing it
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def moto_s3() -> contextlib.AbstractContextManager[str]:
    """Start a moto S3 server (in its own process, like every loopback server here); yields its endpoint URL."""
    return loopback_process(lambda port: [sys.executable, "-c", _SERVE.format(port=port)], "moto S3 server")


def s3_environment(monkeypatch: pytest.MonkeyPatch, endpoint: str) -> None:
    """The variables a user of an S3-compatible store sets: credentials and the endpoint."""
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    for key in ("AWS_S3_ENDPOINT", "AWS_NO_SIGN_REQUEST", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(key, raising=False)
