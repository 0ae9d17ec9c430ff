"""`python -m mlmkit.web [--host 127.0.0.1] [--port 8000]`: the describe form alone, for a look before `mlmkit
serve` carries it. Settings come from the environment (see `FormSettings.from_env`)."""

from __future__ import annotations

import argparse

import uvicorn
from fastapi import FastAPI

from mlmkit.web.describe_form import mount_describe_form


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m mlmkit.web", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    args = parser.parse_args()
    app = mount_describe_form(FastAPI(title="mlmkit describe form"))
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
