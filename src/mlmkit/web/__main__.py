"""`python -m mlmkit.web [--host 127.0.0.1] [--port 8000]`: the describe form alone, for a look before `mlmkit
serve` carries it. Settings come from the environment (see `FormSettings.from_env`)."""

from __future__ import annotations

import argparse
import sys


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m mlmkit.web", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    args = parser.parse_args()
    try:
        import uvicorn
        from fastapi import FastAPI

        from mlmkit.errors import MlmkitError
        from mlmkit.web.describe_form import FormSettings, mount_describe_form
    except ImportError as exc:
        sys.exit(f"python -m mlmkit.web needs {exc.name}, which is not installed; expected the web extra "
                 "(pip install 'mlmkit[web]')")
    try:
        settings = FormSettings.from_env()
    except MlmkitError as exc:
        sys.exit(f"Error: {exc}")
    uvicorn.run(mount_describe_form(FastAPI(title="mlmkit describe form"), settings), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
