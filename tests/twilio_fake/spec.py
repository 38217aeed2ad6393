"""Twilio's OpenAPI description of API v2010, indexed for request checking.

The file is 1.8 MB: `load_spec()` parses and indexes it once per process.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_SPEC_PATH = Path("/work/shared/twilio/twilio_api_v2010.json")
SPEC_PATH_ENV = "TWILIO_OPENAPI_SPEC"
METHODS = ("get", "post", "delete", "put", "patch")


@dataclass(frozen=True)
class FieldSchema:
    """What one path, query or form parameter may hold."""

    name: str
    type: str | None = None
    enum: tuple[str, ...] | None = None
    format: str | None = None
    pattern: str | None = None
    min_length: int | None = None
    max_length: int | None = None
    items: FieldSchema | None = None

    def problem(self, value: str) -> str | None:
        """Why `value` does not fit, or None. Arrays are checked item by item by callers."""
        schema = self.items if self.type == "array" and self.items else self
        return schema._scalar_problem(value)

    def _scalar_problem(self, value: str) -> str | None:
        if self.enum is not None and value not in self.enum:
            return f"{value!r} is not one of {list(self.enum)}"
        if self.type == "integer":
            try:
                int(value)
            except ValueError:
                return f"{value!r} is not an integer"
        elif self.type == "number":
            try:
                float(value)
            except ValueError:
                return f"{value!r} is not a number"
        elif self.type == "boolean" and value.lower() not in ("true", "false"):
            return f"{value!r} is not a boolean"
        if self.min_length is not None and len(value) < self.min_length:
            return f"{value!r} is shorter than {self.min_length}"
        if self.max_length is not None and len(value) > self.max_length:
            return f"{value!r} is longer than {self.max_length}"
        if self.pattern is not None and not re.search(self.pattern, value):
            return f"{value!r} does not match {self.pattern}"
        if self.format == "uri":
            parts = urlsplit(value)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                return f"{value!r} is not an absolute http(s) URL"
        return None


@dataclass(frozen=True)
class Operation:
    method: str  # upper case
    operation_id: str
    path_params: dict[str, FieldSchema]
    query_params: dict[str, FieldSchema]
    form_fields: dict[str, FieldSchema] | None  # None: the operation takes no body
    required_fields: frozenset[str]
    responses: dict[str, dict[str, Any] | None]  # status -> JSON schema (resolved) or None


@dataclass(frozen=True)
class Route:
    template: str
    regex: re.Pattern[str]
    operations: dict[str, Operation]  # by upper-case method

    @property
    def specificity(self) -> int:
        """Literal characters in the template: the more, the more specific."""
        return len(re.sub(r"\{\w+\}", "", self.template))


class SpecIndex:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.schemas: dict[str, Any] = document["components"]["schemas"]
        self.routes = [self._route(t, item) for t, item in document["paths"].items()]

    def match(self, path: str) -> list[tuple[Route, dict[str, str]]]:
        """Every route whose template matches `path`, most specific first."""
        found = []
        for route in self.routes:
            m = route.regex.match(path)
            if m:
                found.append((route, m.groupdict()))
        found.sort(key=lambda pair: pair[0].specificity, reverse=True)
        return found

    def operation(self, operation_id: str) -> Operation:
        for route in self.routes:
            for op in route.operations.values():
                if op.operation_id == operation_id:
                    return op
        raise KeyError(operation_id)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            ref = schema["$ref"]
            prefix = "#/components/schemas/"
            if not ref.startswith(prefix):
                raise ValueError(f"unsupported $ref {ref}")
            schema = self.schemas[ref[len(prefix) :]]
        return schema

    def response_problems(self, schema: dict[str, Any], body: Any, where: str = "") -> list[str]:
        """How `body` departs from a response schema: unknown or missing properties, wrong
        types, values outside an enum. Enough to keep the fake's answers spec-shaped."""
        schema = self.resolve(schema)
        problems: list[str] = []
        if body is None:
            if not schema.get("nullable") and "type" in schema:
                problems.append(f"{where or 'body'} is null")
            return problems
        kind = schema.get("type")
        if "enum" in schema and body not in schema["enum"]:
            problems.append(f"{where}: {body!r} not in {schema['enum']}")
        if kind == "object" and "properties" in schema:
            if not isinstance(body, dict):
                return [f"{where or 'body'} is not an object"]
            props = schema["properties"]
            problems += [f"{where}.{k}: not in schema" for k in body if k not in props]
            problems += [f"{where}.{k}: missing" for k in props if k not in body]
            for k, sub in props.items():
                if k in body:
                    problems += self.response_problems(sub, body[k], f"{where}.{k}")
        elif kind == "array":
            if not isinstance(body, list):
                return [f"{where} is not an array"]
            for i, item in enumerate(body):
                problems += self.response_problems(schema.get("items", {}), item, f"{where}[{i}]")
        elif kind == "string" and not isinstance(body, str):
            problems.append(f"{where}: {body!r} is not a string")
        elif kind == "integer" and not (isinstance(body, int) and not isinstance(body, bool)):
            problems.append(f"{where}: {body!r} is not an integer")
        elif kind == "number" and not isinstance(body, int | float):
            problems.append(f"{where}: {body!r} is not a number")
        elif kind == "boolean" and not isinstance(body, bool):
            problems.append(f"{where}: {body!r} is not a boolean")
        return problems

    # -- indexing ----------------------------------------------------------------------

    def _route(self, template: str, item: dict[str, Any]) -> Route:
        pattern = ""
        for part in re.split(r"(\{\w+\})", template):
            if part.startswith("{") and part.endswith("}"):
                pattern += f"(?P<{part[1:-1]}>[^/]+?)"
            else:
                pattern += re.escape(part)
        operations = {m.upper(): self._operation(m.upper(), item[m]) for m in METHODS if m in item}
        return Route(template, re.compile(f"^{pattern}$"), operations)

    def _operation(self, method: str, op: dict[str, Any]) -> Operation:
        path_params: dict[str, FieldSchema] = {}
        query_params: dict[str, FieldSchema] = {}
        for param in op.get("parameters", []):
            field = self._field(param["name"], param.get("schema", {}))
            (path_params if param["in"] == "path" else query_params)[param["name"]] = field
        form_fields: dict[str, FieldSchema] | None = None
        required: frozenset[str] = frozenset()
        body = op.get("requestBody")
        if body is not None:
            schema = self.resolve(body["content"]["application/x-www-form-urlencoded"]["schema"])
            props = schema.get("properties", {})
            form_fields = {name: self._field(name, sub) for name, sub in props.items()}
            required = frozenset(schema.get("required", []))
        responses: dict[str, dict[str, Any] | None] = {}
        for status, answer in op.get("responses", {}).items():
            content = answer.get("content", {}).get("application/json")
            responses[status] = self.resolve(content["schema"]) if content else None
        return Operation(
            method, op["operationId"], path_params, query_params, form_fields, required, responses
        )

    def _field(self, name: str, raw: dict[str, Any]) -> FieldSchema:
        schema = self.resolve(raw)
        items = schema.get("items")
        return FieldSchema(
            name=name,
            type=schema.get("type"),
            enum=tuple(schema["enum"]) if "enum" in schema else None,
            format=schema.get("format"),
            pattern=schema.get("pattern"),
            min_length=schema.get("minLength"),
            max_length=schema.get("maxLength"),
            items=self._field(name, items) if isinstance(items, dict) else None,
        )


def spec_path() -> Path:
    return Path(os.environ.get(SPEC_PATH_ENV, str(DEFAULT_SPEC_PATH)))


@functools.cache
def load_spec() -> SpecIndex:
    with spec_path().open(encoding="utf-8") as fh:
        return SpecIndex(json.load(fh))
