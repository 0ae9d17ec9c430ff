#!/usr/bin/env python3
"""Run a CWL tool with the EOAP schema URLs answered from a local mirror, for machines with no internet.

EOAP custom types are imported by URL (`https://raw.githubusercontent.com/eoap/schemas/main/...`), which
is how eoap-cwlwrap recognises them (a local import is not). cwltool, Toil, eoap-validator and
transpiler-mate fetch those imports, and check that their names exist (HEAD), through `requests`.
This runs the named console script with a transport adapter mounted on every requests Session that
answers GET and HEAD for the mirrored hosts from a folder laid out <host>/<path>
($EOAP_SCHEMA_MIRROR, default ../shared/eoap-schemas beside the checkout).

    python scripts/eoap-offline.py cwltool --validate cwl/stage/stage-in.cwl
    python scripts/eoap-offline.py transpiler-mate cwlwrap cwl/inference.cwl#mlmkit-inference ...
"""

from __future__ import annotations

import io
import os
import sys
from importlib.metadata import entry_points
from pathlib import Path
from urllib.parse import urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

MIRROR = Path(os.environ.get("EOAP_SCHEMA_MIRROR") or Path(__file__).resolve().parents[2] / "shared" / "eoap-schemas")


class MirrorAdapter(BaseAdapter):
    """Answers requests for mirrored URLs from files; 404 for anything the mirror lacks."""

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        parts = urlsplit(request.url)
        path = MIRROR / parts.netloc / parts.path.lstrip("/")
        found = path.is_file()
        body = path.read_bytes() if found and request.method != "HEAD" else b""
        response = requests.Response()
        response.status_code, response.reason = (200, "OK") if found else (404, "Not Found")
        response.headers = CaseInsensitiveDict({"Content-Type": "text/yaml; charset=utf-8",
                                                "Content-Length": str(len(body))})
        response.raw, response.encoding = io.BytesIO(body), "utf-8"
        response.url, response.request = request.url, request
        return response

    def close(self) -> None:
        pass


def _mount_mirror() -> None:
    hosts = [entry.name for entry in MIRROR.iterdir() if entry.is_dir()] if MIRROR.is_dir() else []
    original = requests.Session.__init__

    def __init__(self: requests.Session, *args, **kwargs) -> None:
        original(self, *args, **kwargs)
        for host in hosts:
            self.mount(f"https://{host}/", MirrorAdapter())

    requests.Session.__init__ = __init__


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: eoap-offline.py TOOL [ARGS...]  (TOOL: cwltool, eoap-validator, transpiler-mate, ...)")
    if not MIRROR.is_dir():
        sys.exit(f"no EOAP schema mirror at {MIRROR}; expected a folder laid out <host>/<path> ($EOAP_SCHEMA_MIRROR)")
    tool = sys.argv[1]
    found = entry_points(group="console_scripts", name=tool)
    if not found:
        sys.exit(f"{tool} is not an installed console script; expected e.g. cwltool, eoap-validator, transpiler-mate")
    _mount_mirror()
    sys.argv = [tool, *sys.argv[2:]]
    sys.exit(next(iter(found)).load()())


if __name__ == "__main__":
    main()
