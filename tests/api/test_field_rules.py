"""The field rules an error message quotes agree with the bounds the request models enforce: one
source of truth, checked, so a changed limit cannot leave the message telling the old one."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

from seqdream.api import ark, media, openai_images, schemas
from seqdream.api.field_rules import field_rules

BOUNDS = ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "minLength", "maxLength", "minItems",
          "maxItems")  # fmt: skip
DIALECTS: list[tuple[type[BaseModel], dict[str, str]]] = [
    *((spec.schema, schemas.V45_FIELD_RULES if "v4.5" in spec.id else schemas.FIELD_RULES) for spec in schemas.MODELS),
    (schemas.DeleteRequest, schemas.FIELD_RULES),
    (schemas.ListingQuery, schemas.FIELD_RULES),
    (ark.ArkImageRequest, ark.FIELD_RULES),
    (openai_images.OpenAIImageRequest, openai_images.FIELD_RULES),
    (media.UploadTicketRequest, media.FIELD_RULES),
]


def bounds(model: type[BaseModel]) -> dict[str, list[Any]]:
    """Each field's enforced numeric bounds, from the model's own JSON schema (nested options included)."""
    schema = model.model_json_schema()
    found: dict[str, list[Any]] = {}

    def walk(name: str, node: dict[str, Any]) -> None:
        if "$ref" in node:
            node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
        found.setdefault(name, []).extend(node[key] for key in BOUNDS if key in node)
        for child in ("items", *("anyOf", "allOf", "oneOf")):
            value = node.get(child)
            for branch in value if isinstance(value, list) else [value] if isinstance(value, dict) else []:
                walk(name, branch)
        for nested in node.get("properties", {}).values():
            walk(name, nested)

    for name, node in schema.get("properties", {}).items():
        walk(name, node)
    return found


@pytest.mark.parametrize(("model", "rules"), DIALECTS, ids=[model.__name__ for model, _ in DIALECTS])
def test_every_field_has_a_rule_that_states_its_bounds(model: type[BaseModel], rules: dict[str, str]) -> None:
    enforced = bounds(model)
    missing = sorted(name for name in enforced if name not in rules)
    assert missing == [], f"{model.__name__}: fields without a rule to quote"
    wrong = {name: (rules[name], numbers) for name, numbers in enforced.items()
             if any(str(number) not in rules[name] for number in numbers if number not in (0, 1))}  # fmt: skip
    assert wrong == {}, f"{model.__name__}: a rule that does not state the bound its field enforces"


def test_a_changed_bound_changes_the_rule_it_is_quoted_by() -> None:
    """The rules are derived from the models: a changed limit is the new rule, with nothing to edit."""

    class Options(BaseModel):
        max_images: int = Field(1, ge=1, le=99)
        name: str = Field(min_length=1, max_length=7)
        code: str = Field(min_length=2, max_length=5)
        tags: list[str] = Field(default_factory=list, max_length=3)
        flag: bool = False
        mode: Literal["a", "b", "c"] = "a"

    class Request(BaseModel):
        count: int | None = Field(None, ge=0)
        options: Options | None = None

    rules = field_rules(Options, Request, by_validator={"name": "a name"}, notes={"count": "zero means none"})
    assert bounds(Options)["max_images"] == [1, 99] and rules["max_images"] == "an integer from 1 to 99"
    assert rules["name"] == "a name"  # a validator's own rule replaces the schema's
    assert rules["code"] == "a string of 2 to 5 characters"
    assert rules["tags"] == "an array of at most 3 strings" and rules["flag"] == "true or false"
    assert rules["mode"] == '"a", "b" or "c"'
    assert rules["count"] == "an integer of at least 0; zero means none"
    assert rules["options"].startswith(
        '{"max_images": an integer from 1 to 99, "name": a non-empty string of at most 7'
    )
