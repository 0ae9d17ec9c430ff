"""Web pages over the library: the describe form (`/describe`), mounted by `mlmkit serve` or run alone with
`python -m mlmkit.web`. Needs the `web` extra (FastAPI, Jinja2, python-multipart, uvicorn)."""
