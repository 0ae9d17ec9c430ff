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
