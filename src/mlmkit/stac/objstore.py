"""`s3://`, `gs://` and `az://` hrefs: as GDAL virtual file paths for imagery, as obstore stores for model files.

One set of environment variables configures both, the ones users of these clouds already set:
credentials (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`/`AWS_SESSION_TOKEN`, `GOOGLE_APPLICATION_CREDENTIALS`,
`AZURE_STORAGE_ACCOUNT`/`AZURE_STORAGE_ACCESS_KEY` or `AZURE_STORAGE_SAS_TOKEN`), anonymous access to public
data (`AWS_NO_SIGN_REQUEST=YES`, `GS_NO_SIGN_REQUEST=YES`, `AZURE_NO_SIGN_REQUEST=YES`, as GDAL spells them) and
an S3-compatible endpoint (`AWS_ENDPOINT_URL` or `AWS_ENDPOINT_URL_S3`, as boto3 and obstore spell it: mapped
here onto GDAL's `AWS_S3_ENDPOINT`, `AWS_HTTPS` and path-style addressing).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlparse

from mlmkit.errors import InvalidInput, RemoteFailure

GDAL_PREFIXES = {"s3": "/vsis3/", "gs": "/vsigs/", "az": "/vsiaz/"}
_ANONYMOUS = {"s3": "AWS_NO_SIGN_REQUEST", "gs": "GS_NO_SIGN_REQUEST", "az": "AZURE_NO_SIGN_REQUEST"}
_TRUE = ("1", "yes", "true", "on")


def is_object_store(href: str) -> bool:
    """Whether `href` names an object in S3, Google Cloud Storage or Azure Blob Storage."""
    return urlparse(str(href)).scheme in GDAL_PREFIXES


def split(href: str) -> tuple[str, str, str]:
    """(scheme, bucket or container, key) of an object-store href."""
    parsed = urlparse(href)
    key = parsed.path.lstrip("/")
    if parsed.scheme not in GDAL_PREFIXES or not parsed.netloc or not key:
        raise InvalidInput(f"{href} is not an object URL; expected s3://BUCKET/KEY, gs://BUCKET/KEY or "
                           "az://CONTAINER/KEY")
    return parsed.scheme, parsed.netloc, key


def gdal_path(href: str) -> str:
    """The GDAL virtual file path of an object-store href (/vsis3/…); other hrefs unchanged."""
    if not is_object_store(href):
        return href
    scheme, bucket, key = split(href)
    return f"{GDAL_PREFIXES[scheme]}{bucket}/{key}"


def _endpoint(env: Mapping[str, str]) -> str | None:
    return env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")


def anonymous(scheme: str, env: Mapping[str, str] = os.environ) -> bool:
    return env.get(_ANONYMOUS[scheme], "").lower() in _TRUE


def gdal_config(hrefs: Iterable[str], env: Mapping[str, str] = os.environ) -> dict[str, str]:
    """GDAL configuration options that GDAL cannot derive from the environment itself.

    GDAL reads credentials and *_NO_SIGN_REQUEST from the environment; an `AWS_ENDPOINT_URL` it does not know
    becomes `AWS_S3_ENDPOINT` (host:port), `AWS_HTTPS` and path-style requests, unless GDAL's own are set.
    """
    endpoint = _endpoint(env)
    if endpoint is None or "AWS_S3_ENDPOINT" in env or not any(urlparse(h).scheme == "s3" for h in hrefs):
        return {}
    parsed = urlparse(endpoint)
    return {"AWS_S3_ENDPOINT": parsed.netloc + parsed.path.rstrip("/"),
            "AWS_HTTPS": "NO" if parsed.scheme == "http" else "YES", "AWS_VIRTUAL_HOSTING": "FALSE"}


def store_config(scheme: str, env: Mapping[str, str] = os.environ) -> dict[str, Any]:
    """obstore keyword arguments for a bucket; obstore reads credentials and regions from the environment."""
    config: dict[str, Any] = {}
    if anonymous(scheme, env):
        config["skip_signature"] = True
    if scheme == "s3":
        endpoint = _endpoint(env)
        if endpoint is None and env.get("AWS_S3_ENDPOINT"):  # configured for GDAL only
            secure = env.get("AWS_HTTPS", "YES").lower() in _TRUE
            endpoint = f"{'https' if secure else 'http'}://{env['AWS_S3_ENDPOINT']}"
        if endpoint:
            config["endpoint"] = endpoint
            config["virtual_hosted_style_request"] = env.get("AWS_VIRTUAL_HOSTING", "FALSE").lower() in _TRUE
            if endpoint.startswith("http://"):
                config["client_options"] = {"allow_http": True}
    if scheme == "az":
        for gdal_name, store_name in (("AZURE_STORAGE_ACCOUNT", "account_name"),
                                      ("AZURE_STORAGE_ACCESS_KEY", "account_key"),
                                      ("AZURE_STORAGE_SAS_TOKEN", "sas_key")):
            if env.get(gdal_name):
                config[store_name] = env[gdal_name]
    return config


def open_store(href: str) -> tuple[Any, str]:
    """An obstore store for the bucket of `href` and the object's key in it."""
    scheme, bucket, key = split(href)
    try:
        from obstore.store import from_url
    except ImportError as exc:
        raise InvalidInput(f"reading {href} needs obstore, which is not installed; expected `pip install obstore`") \
            from exc
    try:
        return from_url(f"{scheme}://{bucket}", **store_config(scheme)), key
    except Exception as exc:  # obstore raises for unusable configuration
        raise RemoteFailure(f"cannot configure access to {href}: {str(exc).splitlines()[0]}") from exc
