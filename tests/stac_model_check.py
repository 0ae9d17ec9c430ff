"""Reading mlmkit's MLM Items with stac-model, the MLM extension's own pydantic implementation."""

from __future__ import annotations

from stac_model.schema import MLModelProperties


def assert_stac_model_reads(item: dict) -> MLModelProperties:
    """stac-model parses the Item's mlm: fields and reads back what mlmkit wrote (names, tasks, tensors)."""
    props = item["properties"]
    model = MLModelProperties.model_validate({key: value for key, value in props.items() if key.startswith("mlm:")})
    assert model.name == props["mlm:name"] and model.architecture == props["mlm:architecture"]
    assert {str(getattr(task, "value", task)) for task in model.tasks} == set(props["mlm:tasks"])
    assert [(i.name, [getattr(b, "name", b) for b in i.bands], list(i.input.shape)) for i in model.input] == \
        [(i["name"], i.get("bands", []), i["input"]["shape"]) for i in props["mlm:input"]]
    assert [[c.value for c in o.classes] for o in model.output] == \
        [[c["value"] for c in o.get("classification:classes", [])] for o in props["mlm:output"]]
    return model
