"""The stac-fastapi-pgstac app behind a write guard, as a deployment with protected transactions runs it.

Reads stay open; POST/PUT/PATCH/DELETE under /collections need `Authorization: Bearer $MLMKIT_TEST_WRITE_TOKEN`
(missing → 401, wrong → 403). Started by uvicorn in `pgstac_server.py` (`pgstac_app:create_app --factory`).
"""

from __future__ import annotations

import json
import os

from stac_fastapi.pgstac.app import create_app as create_stac_app

WRITE_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


class WriteGuard:
    """ASGI middleware answering 401/403 to writes without the expected bearer token."""

    def __init__(self, app, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] in WRITE_METHODS and scope["path"].startswith("/collections"):
            given = dict(scope["headers"]).get(b"authorization")
            if given != self.expected:
                status = 401 if given is None else 403
                body = json.dumps({"code": "Unauthorized" if status == 401 else "Forbidden",
                                   "description": "a valid bearer token is required to write"}).encode()
                await send({"type": "http.response.start", "status": status,
                            "headers": [(b"content-type", b"application/json")]})
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)


def create_app():
    app = create_stac_app()
    token = os.environ.get("MLMKIT_TEST_WRITE_TOKEN")
    return WriteGuard(app, token) if token else app
