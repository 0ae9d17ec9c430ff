"""The describe form's checks as the user types: the Item the spec would give is built from what the file declared
(no file needed), then checked by the STAC/MLM schemas, mlmkit's semantic checks and the lint; every message is
placed beside the form field it is about.
"""

from __future__ import annotations

from pathlib import Path

import pystac

from mlmkit.catalog.validate import validate_dict
from mlmkit.errors import InvalidInput
from mlmkit.mlm.build import item_for_model, model_asset
from mlmkit.mlm.describe import metadata_from_spec
from mlmkit.mlm.lint import lint_model
from mlmkit.mlm.spec import spec_from_item
from mlmkit.web.spec_form import Message, ParsedForm
from mlmkit.web.uploads import UploadedModel


def draft_item(model: UploadedModel, spec: dict) -> dict:
    """The Item `describe` would write for this file and spec, with the model asset's href relative (no file
    behind it: the file checks are left to `describe` itself)."""
    meta, _ = metadata_from_spec(Path(model.filename), spec)
    asset = model_asset(Path(model.filename), meta, model.info.kind,
                        {"file:size": model.size, "file:checksum": model.checksum})
    asset.href = f"./{model.filename}"
    return item_for_model(model.info, meta, asset).to_dict(include_self_link=False, transform_hrefs=False)


def check_form(parsed: ParsedForm, model: UploadedModel | None, schema_dir: Path | None = None,
               require: bool = True) -> list[Message]:
    """Every message for the form: its own parse messages (with `require`, also the required fields left empty),
    then the built Item's schema, semantic and lint findings (once a file was read and the required fields are
    there)."""
    messages = parsed.messages + (parsed.missing if require else [])
    if model is None:
        return messages + [Message("model", "no model file read yet; expected one chosen and read first")]
    if parsed.missing:
        return messages
    try:
        item = draft_item(model, parsed.spec)
    except InvalidInput as exc:  # the spec contradicts the file (band or class counts, dim names, ...)
        return messages + [Message("", str(exc))]
    # the lint with what the file declared (validate's own lint sees no file: the form keeps none)
    findings = lint_model(spec_from_item(pystac.Item.from_dict(item)), model.info)
    linted = {(finding.path, finding.message) for finding in findings}
    for problem in validate_dict(item, None, schema_dir, warnings=True):
        if not (problem.warning and (problem.path, problem.message) in linted):
            messages.append(Message(parsed.field_for(problem.path), f"{problem.path}: {problem.message}",
                                    "warning" if problem.warning else "error"))
    for finding in findings:
        messages.append(Message(parsed.field_for(finding.path), finding.message,
                                "error" if finding.refuse else "warning"))
    return messages
