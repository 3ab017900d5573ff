"""What each field of a request allows, in words, derived from its pydantic model: the bounds a 400
quotes ("allowed: an integer from 1 to 14") are the bounds the model enforces, one source of truth.

A validator's rule that no schema shows (a size's form, a content type) is written beside the model
that enforces it and passed as `by_validator`; `notes` add what a number does not say."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel


def field_rules(
    *models: type[BaseModel], by_validator: dict[str, str] | None = None, notes: dict[str, str] | None = None
) -> dict[str, str]:
    """Each field of `models` (a later model's field wins) described from its JSON schema, then the
    `by_validator` rules in place of the schema's, then `notes` after a semicolon."""
    rules: dict[str, str] = {}
    for model in models:
        schema = model.model_json_schema()
        definitions = schema.get("$defs", {})
        for name, node in schema.get("properties", {}).items():
            rules[name] = describe(node, definitions)
    rules.update(by_validator or {})
    for name, note in (notes or {}).items():
        rules[name] = f"{rules[name]}; {note}" if name in rules else note
    return rules


def describe(node: dict[str, Any], definitions: dict[str, Any]) -> str:
    """One JSON-schema node in words: "an integer from 1 to 14", "true or false", ..."""
    if "$ref" in node:
        node = definitions[node["$ref"].rsplit("/", 1)[-1]]
    branches = [branch for branch in node.get("anyOf", []) if branch.get("type") != "null"]
    if branches:
        return " or ".join(describe(branch, definitions) for branch in branches)
    if "enum" in node:
        return _choices([json.dumps(value) for value in node["enum"]])
    kind = node.get("type")
    if kind == "boolean":
        return "true or false"
    if kind == "integer":
        return "an integer" + _range(node.get("minimum"), node.get("maximum"), "from {} to {}")
    if kind == "string":
        low, high = node.get("minLength") or None, node.get("maxLength")
        if low == 1:
            return "a non-empty string" + (f" of at most {high} characters" if high is not None else "")
        return "a string" + _range(low, high, "of {} to {}") + (" characters" if low or high is not None else "")
    if kind == "array":
        noun = {"string": "strings", "integer": "integers"}.get(node.get("items", {}).get("type"), "items")
        return "an array of " + _count(node.get("minItems"), node.get("maxItems")) + noun
    if kind == "object" and "properties" in node:
        fields = ", ".join(f'"{name}": {describe(child, definitions)}' for name, child in node["properties"].items())
        return "{" + fields + "}"
    return "a value of the documented type"


def _choices(values: list[str]) -> str:
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " or " + values[-1]


def _range(low: Any, high: Any, both: str) -> str:
    if low is not None and high is not None:
        return " " + both.format(low, high)
    if low is not None:
        return f" of at least {low}"
    if high is not None:
        return f" of at most {high}"
    return ""


def _count(low: int | None, high: int | None) -> str:
    if low and high is not None:
        return f"{low} to {high} "
    if high is not None:
        return f"at most {high} "
    if low:
        return f"at least {low} "
    return ""
