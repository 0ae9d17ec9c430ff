"""The describe form: pages under `/describe` that turn a model file into a valid MLM catalog without YAML.

GET  /describe          the form
POST /describe/upload   read a model file: what it says, and the form filled from it
POST /describe/check    the checks: JSON for the page's script (Accept: application/json), else the page
POST /describe/build    the catalog, built by `mlmkit describe`'s own code, as a zip download
POST /describe/try      the smoke check of that catalog on a few tiles of a sample STAC Item, shown as a picture
POST /describe/publish  the catalog kept where the operator serves files and upserted into their STAC API
                        (only when the operator configured it; otherwise nothing is kept beyond a request)

`mount_describe_form(app)` adds these to any FastAPI app (`mlmkit serve` mounts them); `python -m mlmkit.web`
runs them alone. Server-rendered HTML that works without scripts; describe.js adds live checks on top.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO
from urllib.parse import quote

import requests
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response, StreamingResponse
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from mlmkit.catalog.publish import auth_headers, publish as publish_catalog
from mlmkit.errors import InvalidArgument, InvalidInput, LimitExceeded, MlmkitError, RemoteFailure
from mlmkit.catalog.model_catalog import describe_model
from mlmkit.mlm.describe import metadata_from_spec
from mlmkit.stac.read import HTTP_TIMEOUT_S
from mlmkit.stac.safepath import safe_name
from mlmkit.stac.schemas import SCHEMA_DIR_ENV
from mlmkit.web.checks import check_form
from mlmkit.web.prefill import prefill
from mlmkit.web.sample import (DEFAULT_TIMEOUT_S, MAX_ITEM_BYTES, Trial, TrialGate, number_from_env, sample_item,
                               timeout_from_env, try_model)
from mlmkit.web.spec_form import (BANDS, CLASSES, EXTENT, INPUT, MODEL, OUTPUT, SCALING, SOURCES, FormData, Message,
                                  ParsedForm, as_form, shown_values, spec_from_form, table_rows)
from mlmkit.web.uploads import UploadedModel, limited_receive, read_upload, save_upload, too_large

HERE = Path(__file__).parent
STATIC = {"describe.js": "text/javascript", "describe.css": "text/css"}
MAX_UPLOAD_ENV = "MLMKIT_DESCRIBE_MAX_UPLOAD_MB"
DEFAULT_MAX_UPLOAD_MB = 512
PUBLISH_ENV = {"api_url": "MLMKIT_DESCRIBE_PUBLISH_API", "files_dir": "MLMKIT_DESCRIBE_PUBLISH_DIR",
               "files_url": "MLMKIT_DESCRIBE_PUBLISH_URL"}
FIELDS_BYTES = 1 << 20  # the form's text fields, beside the file
MAX_FIELDS = 4000
DRAIN_FACTOR = 4  # a too-large body is read (and dropped) up to this many times the limit: the browser sees the answer


@dataclass(frozen=True)
class PublishTarget:
    """Where published catalogs go: kept under `files_dir`, which the operator serves at `files_url`, and
    upserted into the STAC API at `api_url` (a token from $MLMKIT_API_TOKEN, or `headers`)."""

    api_url: str
    files_dir: Path
    files_url: str
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class FormSettings:
    """What the operator decides: the upload limit, the schemas, and whether (and where) users may publish."""

    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB << 20
    schema_dir: Path | None = None
    publish: PublishTarget | None = None
    try_timeout_s: float = DEFAULT_TIMEOUT_S  # the smoke check on sample imagery

    @classmethod
    def from_env(cls) -> FormSettings:
        """$MLMKIT_DESCRIBE_MAX_UPLOAD_MB, $MLMKIT_SCHEMA_DIR, $MLMKIT_DESCRIBE_TRY_TIMEOUT_S and, all three
        set, the $MLMKIT_DESCRIBE_PUBLISH_*."""
        max_bytes = int(number_from_env(MAX_UPLOAD_ENV, DEFAULT_MAX_UPLOAD_MB, "the upload limit in MiB") * 2**20)
        target = {key: os.environ.get(name) for key, name in PUBLISH_ENV.items()}
        publish_to = PublishTarget(target["api_url"], Path(target["files_dir"]), target["files_url"]) \
            if all(target.values()) else None
        schema_dir = os.environ.get(SCHEMA_DIR_ENV)
        return cls(max_bytes, Path(schema_dir) if schema_dir else None, publish_to, timeout_from_env())


class FormErrors(InvalidInput):
    """The form has errors; each message sits beside its field."""

    def __init__(self, messages: list[Message]) -> None:
        super().__init__("; ".join(message.text for message in messages if message.severity == "error"))
        self.messages = messages


@dataclass
class Submission:
    """One request's form: its text fields, the file (if one was chosen), the model the page described and a
    sample Item file (if one was chosen)."""

    fields: FormData
    upload: UploadFile | None
    described: UploadedModel | None
    sample: UploadFile | None = None

    @property
    def parsed(self) -> ParsedForm:
        return spec_from_form(self.fields)


async def _drain(request: Request, cap: int) -> None:
    """Read what is left of a refused body (up to `cap` bytes) so the browser gets to read the answer."""
    seen = 0
    while seen <= cap:
        message = await request.receive()
        if message["type"] != "http.request" or not message.get("more_body"):
            return
        seen += len(message.get("body", b""))


async def _submission(request: Request, settings: FormSettings) -> Submission:
    """The request's form, its body limited to the upload limit plus the text fields."""
    limit = settings.max_upload_bytes + FIELDS_BYTES
    declared = request.headers.get("content-length", "")
    refusal = too_large(settings.max_upload_bytes)
    try:
        if declared.isdigit() and int(declared) > limit:
            raise LimitExceeded(refusal)
        form = await Request(request.scope, limited_receive(request.receive, limit, refusal)).form(
            max_files=2, max_fields=MAX_FIELDS)
    except LimitExceeded:
        await _drain(request, DRAIN_FACTOR * limit)
        raise
    except HTTPException as exc:  # starlette's answer to a body that is not form data
        raise InvalidArgument(f"the request is not a form ({exc.detail}); expected the describe form's fields") from exc
    fields = {key: [value for value in form.getlist(key) if isinstance(value, str)] for key in form.keys()}
    upload, sample = (_chosen(form.get(name)) for name in ("model", "sample_item"))
    info = (fields.get("model_info") or [""])[0]
    return Submission(fields, upload, UploadedModel.from_json(info) if info else None, sample)


def _chosen(value: object) -> UploadFile | None:
    """A file field's file, None where none was chosen."""
    return value if isinstance(value, UploadFile) and value.filename else None


def _input_channels(model: UploadedModel | None, spec: Mapping[str, Any]) -> int:
    """Band rows to offer: the input's channel count when the file fixes it (dims as describe names them)."""
    if model is None:
        return 0
    tensors = [t for t in model.info.inputs if t.name == spec.get("input_name")] or list(model.info.inputs[:1])
    shape = tensors[0].shape if tensors else ()
    size = {2: 1, 3: 0, 4: 1, 5: 2}.get(len(shape))
    return max(shape[size], 0) if size is not None else 0


def _class_count(model: UploadedModel | None, spec: Mapping[str, Any]) -> int:
    if model is None:
        return 0
    tensors = [t for t in model.info.outputs if t.name == spec.get("output_name")] or list(model.info.outputs[-1:])
    shape = tensors[0].shape if tensors else ()
    return shape[1] if len(shape) in (2, 4) and shape[1] > 1 else 0


class DescribeForm:
    """The pages and actions of the form for one operator's settings."""

    def __init__(self, settings: FormSettings) -> None:
        self.settings = settings
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self.gate = TrialGate()

    def page(self, request: Request, fields: FormData, model: UploadedModel | None, messages: list[Message],
             *, status: int = 200, notice: str | None = None, add: str = "", trial: Trial | None = None) -> Response:
        """The form showing `fields`, each message beside its field; `add` asks one more row of that table;
        `trial`: the smoke check's picture and lines."""
        values = shown_values(fields)
        spec = spec_from_form(as_form(values)).spec
        rows = {table.key: table_rows(table, values[table.key], wanted, (not wanted) + (add == table.prefix))
                for table, wanted in ((BANDS, _input_channels(model, spec)), (SCALING, 0),
                                      (CLASSES, _class_count(model, spec)))}
        by_field: dict[str, list[Message]] = {}
        for message in messages:
            by_field.setdefault(message.field, []).append(message)
        tensors = {"input_name": [t.name for t in model.info.inputs] if model else [],
                   "output_name": [t.name for t in model.info.outputs] if model else []}
        sections = [(MODEL, []), (INPUT, [(BANDS, rows["bands"]), (SCALING, rows["value_scaling"])]),
                    (OUTPUT, [(CLASSES, rows["classes"])]), (EXTENT, []), (SOURCES, [])]
        limit = self.settings.max_upload_bytes
        context = {"base": request.url_for("describe_page").path, "model": model, "values": values,
                   "messages": by_field, "sections": sections, "tensor_choices": tensors, "notice": notice,
                   "max_bytes": limit, "max_mib": f"{limit / 2**20:g}", "publish": self.settings.publish,
                   "trial": trial, "sample_url": (fields.get("sample_url") or [""])[0],
                   "try_timeout": f"{self.settings.try_timeout_s:g}", "max_item_mib": MAX_ITEM_BYTES >> 20}
        return self.templates.TemplateResponse(request, "describe.html", context, status_code=status)

    def read(self, submission: Submission) -> tuple[UploadedModel, dict[str, Any]]:
        """What the uploaded file declares and what the form can fill in from it; the file is gone after."""
        if submission.upload is None:
            raise FormErrors([Message("model", "no model file chosen; expected an ONNX, TorchScript or .pt2 file")])
        with tempfile.TemporaryDirectory(prefix="mlmkit-describe-") as tmp:
            path = save_upload(submission.upload.file, Path(tmp), submission.upload.filename)
            model = read_upload(path, submission.parsed.spec)
            return model, prefill(path, model)

    def build(self, submission: Submission, target: Path) -> Path:
        """The catalog of the uploaded file under `target` (a new directory); refused with the form's errors."""
        if submission.upload is None:
            again = f"; expected {submission.described.filename} chosen again" if submission.described else ""
            raise FormErrors([Message("model", f"no model file chosen{again or '; expected one'} (a browser does "
                                               "not keep a chosen file from one page to the next)")])
        with tempfile.TemporaryDirectory(prefix="mlmkit-describe-") as tmp:
            path = save_upload(submission.upload.file, Path(tmp), submission.upload.filename)
            parsed = submission.parsed
            model = read_upload(path, parsed.spec)
            described = submission.described
            if described is not None and described.checksum != model.checksum:
                raise FormErrors([Message("model", f"{model.filename} is not the file read before "
                                                   f"({described.filename}); expected the same file, or read "
                                                   "the new one first")])
            messages = check_form(parsed, model, self.settings.schema_dir)
            if any(message.severity == "error" for message in messages):
                raise FormErrors(messages)
            meta, _ = metadata_from_spec(path, parsed.spec)
            folder = f"{safe_name(meta.id, 'model')}-catalog"
            describe_model(path, target / folder, parsed.spec, schema_dir=self.settings.schema_dir)
            return target / folder

    def download(self, submission: Submission) -> tuple[str, BinaryIO]:
        """The catalog as a zip: its name and an open file whose directory entry is already gone, so nothing
        stays on disk once the answer is sent (or the client goes away)."""
        with tempfile.TemporaryDirectory(prefix="mlmkit-describe-") as tmp:
            archive = _zip(self.build(submission, Path(tmp)))
            return archive.name, open(archive, "rb")  # noqa: SIM115 - closed by _chunks

    def trial(self, submission: Submission) -> Trial:
        """The smoke check of the catalog the form builds (the model file chosen again), on the sample Item; each
        refusal beside the sample field (or, for the form, beside its own fields)."""
        url = (submission.fields.get("sample_url") or [""])[0].strip()
        uploaded = submission.sample.file.read(MAX_ITEM_BYTES + 1) if submission.sample else None
        try:
            item = sample_item(url, uploaded)
        except MlmkitError as exc:
            raise FormErrors([Message("sample_url", str(exc))]) from exc
        with tempfile.TemporaryDirectory(prefix="mlmkit-try-") as tmp:
            catalog = self.build(submission, Path(tmp))
            work = Path(tmp) / "trial"
            work.mkdir()
            try:
                with self.gate.held():
                    return try_model(catalog, item, work, self.settings.try_timeout_s)
            except MlmkitError as exc:
                raise FormErrors([Message("sample_url", str(exc))]) from exc

    def checks(self, submission: Submission) -> list[Message]:
        return check_form(submission.parsed, submission.described, self.settings.schema_dir)

    def publish(self, submission: Submission) -> str:
        """Keep the built catalog where the operator serves files and upsert it into their STAC API."""
        target = self.settings.publish
        if target is None:
            raise InvalidArgument("publishing is not enabled on this server; expected the catalog downloaded instead")
        target.files_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".mlmkit-publish-", dir=target.files_dir) as tmp:
            built = self.build(submission, Path(tmp))
            kept = target.files_dir / built.name
            taken = FormErrors([Message("id", f"a model catalog {built.name} is already published here; expected "
                                              "another item id (or a new version in it)")])
            _refuse_taken(target, built, taken)
            try:
                built.rename(kept)  # never over another user's catalog: a rename onto a non-empty directory fails
            except OSError as exc:
                raise taken from exc
        files_url = f"{target.files_url.rstrip('/')}/{kept.name}/"
        try:
            summary = publish_catalog(kept / "catalog.json", target.api_url, base_href=files_url,
                                      headers=auth_headers(None, target.headers), schema_dir=self.settings.schema_dir)
        except MlmkitError:
            shutil.rmtree(kept, ignore_errors=True)
            raise
        return f"Published to {target.api_url}: {summary.counts()} (files at {files_url})."


def _refuse_taken(target: PublishTarget, built: Path, taken: FormErrors) -> None:
    """A collection the STAC API already holds is someone else's: the form never replaces it (or its items)."""
    collection = json.loads(next(built.glob("*/collection.json")).read_text())["id"]
    url = f"{target.api_url.rstrip('/')}/collections/{quote(collection, safe='')}"
    try:
        response = requests.get(url, headers=auth_headers(None, target.headers), timeout=HTTP_TIMEOUT_S)
    except requests.RequestException as exc:
        raise RemoteFailure(f"cannot reach the STAC API at {target.api_url}: {type(exc).__name__}; expected the "
                            "operator's STAC API running") from exc
    if response.status_code == 200:
        raise taken


def _zip(folder: Path) -> Path:
    """`folder` as `<folder>.zip` beside it, paths inside under `<folder>/`."""
    archive = folder.with_suffix(".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out.write(path, f"{folder.name}/{path.relative_to(folder).as_posix()}")
    return archive


def _chunks(stream: BinaryIO) -> Iterator[bytes]:
    with stream:
        while chunk := stream.read(1 << 20):
            yield chunk


def _status(exc: MlmkitError) -> int:
    return 413 if isinstance(exc, LimitExceeded) else 422


def _messages(exc: MlmkitError) -> list[Message]:
    """An error's messages: beside their fields for form errors, else beside the file (what was read failed)."""
    return exc.messages if isinstance(exc, FormErrors) else [Message("model", str(exc))]


def describe_router(settings: FormSettings | None = None) -> APIRouter:
    """The form's routes; no token needed (nothing is kept unless the operator configured publishing)."""
    form = DescribeForm(settings or FormSettings.from_env())
    router = APIRouter(prefix="/describe", tags=["describe form"])
    empty: FormData = {}

    @router.get("", response_class=HTMLResponse, name="describe_page")
    async def describe_page(request: Request) -> Response:
        return form.page(request, empty, None, [])

    @router.get("/static/{name}", name="describe_static")
    async def describe_static(name: str) -> Response:
        if name not in STATIC:  # a fixed list: no path from the request reaches the file system
            return Response("not found", status_code=404, media_type="text/plain")
        return FileResponse(HERE / "static" / name, media_type=STATIC[name])

    async def attempt(request: Request, action: Callable[[Submission], Any],
                      as_json: bool = False) -> tuple[Submission, Any] | Response:
        """The request's form and what `action` makes of it; else the form again as it was sent (or, for the
        page's script, JSON) with the error beside its field."""
        submission = None
        try:
            submission = await _submission(request, form.settings)
            return submission, await run_in_threadpool(action, submission)
        except MlmkitError as exc:
            if as_json:
                return JSONResponse({"messages": [m.__dict__ for m in _messages(exc)]}, status_code=_status(exc))
            return form.page(request, submission.fields if submission else empty,
                             submission.described if submission else None, _messages(exc), status=_status(exc))

    @router.post("/upload", response_class=HTMLResponse)
    async def describe_upload(request: Request) -> Response:
        outcome = await attempt(request, form.read)
        if isinstance(outcome, Response):
            return outcome
        submission, (model, prefilled) = outcome
        values = as_form(shown_values(submission.fields, prefilled))
        # fields still to fill in are no error yet: what the form filled in is checked
        messages = await run_in_threadpool(check_form, spec_from_form(values), model, form.settings.schema_dir,
                                           False)
        return form.page(request, values, model, messages)

    @router.post("/check")
    async def describe_check(request: Request) -> Response:
        wants_json = "application/json" in request.headers.get("accept", "")
        outcome = await attempt(request, form.checks, wants_json)
        if isinstance(outcome, Response):
            return outcome
        submission, messages = outcome
        if wants_json:
            return JSONResponse({"messages": [message.__dict__ for message in messages]})
        add = (submission.fields.get("add") or [""])[0]
        return form.page(request, submission.fields, submission.described, messages, add=add)

    @router.post("/build")
    async def describe_build(request: Request) -> Response:
        outcome = await attempt(request, form.download)
        if isinstance(outcome, Response):
            return outcome
        _, (name, stream) = outcome
        return StreamingResponse(_chunks(stream), media_type="application/zip",
                                 headers={"Content-Disposition": f'attachment; filename="{name}"',
                                          "Content-Length": str(os.fstat(stream.fileno()).st_size)})

    async def page_after(request: Request, action: Callable[[Submission], Any],
                         shown: Callable[[Any], dict[str, Any]]) -> Response:
        """The form again as it was sent, with what `action` gave (`shown`: as the page's arguments)."""
        outcome = await attempt(request, action)
        if isinstance(outcome, Response):
            return outcome
        submission, result = outcome
        return form.page(request, submission.fields, submission.described, [], **shown(result))

    @router.post("/try", response_class=HTMLResponse)
    async def describe_try(request: Request) -> Response:
        return await page_after(request, form.trial, lambda trial: {"trial": trial})

    if form.settings.publish is not None:
        @router.post("/publish", response_class=HTMLResponse)
        async def describe_publish(request: Request) -> Response:
            return await page_after(request, form.publish, lambda notice: {"notice": notice, "status": 201})

    return router


def mount_describe_form(app: FastAPI, settings: FormSettings | None = None) -> FastAPI:
    """Add the describe form's routes (under /describe) to `app`; returns it."""
    app.include_router(describe_router(settings))
    return app
