"""Amazon Connect's own service model, as shipped in botocore, indexed for the stand-in.

`load_index()` reads `botocore/data/connect/<version>/service-2.json.gz` (botocore's built-in
data only: a model a user dropped into ~/.aws/models must not change what the tests check),
and `ServiceIndex` then
- routes a restJson1 request (method + requestUri template) to its operation,
- decodes the operation's input members from the path, query string, headers and JSON body,
- checks every value against its shape: required and unknown members, types, string and list
  lengths, number ranges, patterns and enum values (botocore's client checks none of the
  last three, nor any maximum),
- and checks the stand-in's own answers against the output shape in the same way, so the
  stand-in cannot drift from the model.
Problems are returned as sentences; the server turns them into Connect's error answers.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import regex  # the model's patterns use \p{L}-style classes, which `re` lacks
from botocore.loaders import Loader
from botocore.model import OperationModel, ServiceModel, Shape

SERVICE_NAME = "connect"
BUILTIN_DATA = Path(Loader.BUILTIN_DATA_PATH)

# Errors any AWS JSON service may answer although an operation's model does not list them
# (docs.aws.amazon.com/connect/latest/APIReference/CommonErrors.html): authentication,
# throttling, a body that is not JSON, an unknown route. Statuses as there; Connect's own
# ThrottlingException shape says 429, so the model's shape wins where it has one.
COMMON_ERRORS: dict[str, int] = {
    "AccessDeniedException": 403,
    "IncompleteSignatureException": 403,
    "InvalidSignatureException": 403,
    "MissingAuthenticationTokenException": 403,
    "UnrecognizedClientException": 403,
    "SerializationException": 400,
    "ThrottlingException": 429,
    "UnknownOperationException": 404,  # ASSUMED code and status for a route no operation has
    "ServiceUnavailableException": 503,
}


class SerializationError(Exception):
    """The body is not a JSON object: nothing can be checked member by member."""


@dataclass(frozen=True)
class Route:
    operation: OperationModel
    method: str
    path: re.Pattern[str]  # one group per label, in order
    labels: tuple[str, ...]  # the labels' names as the template spells them
    literals: int  # literal characters in the template: the more, the more specific


class ServiceIndex:
    def __init__(self, model: ServiceModel, source: Path) -> None:
        self.model = model
        self.source = source  # the service-2.json.gz the model was read from
        routes = [self._route(model.operation_model(n)) for n in model.operation_names]
        self.routes = sorted(routes, key=lambda r: r.literals, reverse=True)

    # -- routing -----------------------------------------------------------------------

    def match(self, method: str, raw_path: str) -> tuple[OperationModel, dict[str, str]] | None:
        """The operation for `method` and the still percent-encoded path, with its decoded
        path labels; None if no operation has that route."""
        for route in self.routes:
            if route.method != method:
                continue
            m = route.path.match(raw_path)
            if m:
                return route.operation, dict(
                    zip(route.labels, map(unquote, m.groups()), strict=True)
                )
        return None

    @staticmethod
    def _route(op: OperationModel) -> Route:
        template = op.http["requestUri"].split("?", 1)[0]
        pattern, labels, literals = "", [], 0
        for part in re.split(r"(\{[^}]+\})", template):
            if part.startswith("{"):
                name = part[1:-1]
                labels.append(name.rstrip("+"))
                pattern += "(.+)" if name.endswith("+") else "([^/]+)"  # {Key+} spans slashes
            else:
                pattern += re.escape(part)
                literals += len(part)
        path = re.compile(f"^{pattern}$")
        return Route(op, op.http["method"], path, tuple(labels), literals)

    # -- errors ------------------------------------------------------------------------

    def error_status(self, code: str) -> int | None:
        """The HTTP status of an error code: from its shape in the model, else a common one."""
        if code in self.model.shape_names:
            shape = self.model.shape_for(code)
            if shape.metadata.get("exception"):
                return int(shape.metadata.get("error", {}).get("httpStatusCode", 400))
        return COMMON_ERRORS.get(code)

    @staticmethod
    def operation_errors(op: OperationModel) -> set[str]:
        return {shape.name for shape in op.error_shapes}

    def validation_error(self, op: OperationModel) -> str:
        """The code Connect refuses a malformed input with: the operation's own parameter
        error where its model lists one, else its request error."""
        errors = self.operation_errors(op)
        for code in ("InvalidParameterException", "InvalidRequestException"):
            if code in errors:
                return code
        return "InvalidRequestException"

    # -- input -------------------------------------------------------------------------

    def decode_input(
        self,
        op: OperationModel,
        labels: Mapping[str, str],
        query: list[tuple[str, str]],
        headers: Mapping[str, str],
        body: bytes,
    ) -> tuple[dict[str, Any], list[str]]:
        """The input members by name, and every way the request departs from the input
        shape. Raises SerializationError for a body that is not a JSON object."""
        shape = op.input_shape
        problems: list[str] = []
        if shape is None:
            return {}, problems
        document: dict[str, Any] = {}
        if body.strip():
            try:
                document = json.loads(body)
            except ValueError as err:
                raise SerializationError(f"the body is not JSON: {err}") from None
            if not isinstance(document, dict):
                raise SerializationError("the body is not a JSON object")
        params: dict[str, Any] = {}
        claimed_query: set[str] = set()
        body_members: dict[str, str] = {}  # wire name -> member name
        for name, member in shape.members.items():
            location = member.serialization.get("location")
            wire = member.serialization.get("name", name)
            if location == "uri":
                if wire in labels:
                    params[name] = _from_text(member, labels[wire], name, problems)
            elif location == "querystring":
                values = [v for k, v in query if k == wire]
                claimed_query.add(wire)
                if not values:
                    continue
                if member.type_name == "list":
                    params[name] = [
                        _from_text(member.member, v, f"{name}[{i}]", problems)
                        for i, v in enumerate(values)
                    ]
                elif len(values) > 1:
                    problems.append(f"{name}: given {len(values)} times")
                else:
                    params[name] = _from_text(member, values[0], name, problems)
            elif location == "header":
                if wire.lower() in headers:
                    params[name] = _from_text(member, headers[wire.lower()], name, problems)
            else:
                body_members[wire] = name
        # Stricter than AWS, which ignores unknown query parameters: one it drops silently is
        # a caller's bug.
        problems += [f"{k}: unknown query parameter" for k, _ in query if k not in claimed_query]
        for key, value in document.items():
            if key not in body_members:
                problems.append(f"{key}: unknown member of {shape.name}")
            elif value is not None:  # JSON null: the member is absent
                member_name = body_members[key]
                params[member_name] = value
                check(shape.members[member_name], value, member_name, problems)
        for name, member in shape.members.items():
            if name in params and member.serialization.get("location"):
                check(member, params[name], name, problems)
        problems += [
            f"{name}: missing (required by {shape.name})"
            for name in shape.required_members
            if name not in params
        ]
        return params, problems

    # -- output ------------------------------------------------------------------------

    def output_problems(self, op: OperationModel, body: Any) -> list[str]:
        """How an answer's JSON body departs from the operation's output shape."""
        shape = op.output_shape
        if shape is None:
            return [] if body in (None, {}) else ["the operation answers no body"]
        problems: list[str] = []
        check(shape, body, shape.name, problems)
        return problems


# -- checking one value against its shape ------------------------------------------------


def check(shape: Shape, value: Any, where: str, problems: list[str]) -> None:
    """Append to `problems` every way the JSON `value` departs from `shape`."""
    if isinstance(value, _Unchecked):
        return
    kind = shape.type_name
    if kind == "structure":
        _check_structure(shape, value, where, problems)
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{where}: {_show(value)} is not a list")
            return
        _check_range(shape, len(value), where, "items", problems)
        for i, item in enumerate(value):
            check(shape.member, item, f"{where}[{i}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{where}: {_show(value)} is not a map")
            return
        _check_range(shape, len(value), where, "entries", problems)
        for key, item in value.items():
            check(shape.key, key, f"{where} key", problems)
            check(shape.value, item, f"{where}[{key!r}]", problems)
    elif kind == "string":
        _check_string(shape, value, where, problems)
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{where}: {_show(value)} is not an integer")
        else:
            _check_range(shape, value, where, "", problems)
    elif kind in ("float", "double"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            problems.append(f"{where}: {_show(value)} is not a number")
        else:
            _check_range(shape, value, where, "", problems)
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{where}: {_show(value)} is not a boolean")
    elif kind == "timestamp":
        _check_timestamp(shape, value, where, problems)
    elif kind == "blob" and not isinstance(value, str):
        problems.append(f"{where}: {_show(value)} is not base64 text")


def _check_structure(shape: Shape, value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, dict):
        problems.append(f"{where}: {_show(value)} is not an object")
        return
    members = shape.members
    wire = {m.serialization.get("name", n): n for n, m in members.items()}
    present = [k for k, v in value.items() if v is not None]
    for key in present:
        if key not in wire:
            problems.append(f"{where}.{key}: unknown member of {shape.name}")
        else:
            check(members[wire[key]], value[key], f"{where}.{key}", problems)
    names = {wire[k] for k in present if k in wire}
    for name in shape.required_members:
        if name not in names:
            problems.append(f"{where}.{name}: missing (required by {shape.name})")
    if shape.metadata.get("union") and len(names) != 1:
        problems.append(f"{where}: a union takes exactly one member, not {len(names)}")


def _check_string(shape: Shape, value: Any, where: str, problems: list[str]) -> None:
    if not isinstance(value, str):
        problems.append(f"{where}: {_show(value)} is not a string")
        return
    enum = shape.enum
    if enum and value not in enum:
        problems.append(f"{where}: {_show(value)} is not one of {list(enum)}")
    _check_range(shape, len(value), where, "characters", problems)
    compiled = _pattern(shape.metadata.get("pattern"))
    if compiled is not None and not compiled.search(value):
        problems.append(f"{where}: {_show(value)} does not match {shape.metadata['pattern']}")


def _check_range(shape: Shape, size: float, where: str, unit: str, problems: list[str]) -> None:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    what = f"{size:g} {unit}".strip() if unit else f"{size:g}"
    if low is not None and size < low:
        problems.append(f"{where}: {what} is below the minimum {low}")
    if high is not None and size > high:
        problems.append(f"{where}: {what} is above the maximum {high}")


def _check_timestamp(shape: Shape, value: Any, where: str, problems: list[str]) -> None:
    # In a restJson1 body a timestamp is epoch seconds unless the shape says otherwise.
    form = shape.serialization.get("timestampFormat") or shape.metadata.get("timestampFormat")
    if form in (None, "unixTimestamp"):
        if not isinstance(value, int | float) or isinstance(value, bool):
            problems.append(f"{where}: {_show(value)} is not epoch seconds")
    elif not isinstance(value, str) or _parse_time(value, form) is None:
        problems.append(f"{where}: {_show(value)} is not a {form} timestamp")


def _from_text(shape: Shape, text: str, where: str, problems: list[str]) -> Any:
    """A path, query or header value as the JSON value its shape would take."""
    kind = shape.type_name
    if kind in ("integer", "long"):
        if re.fullmatch(r"-?\d+", text):
            return int(text)
    elif kind in ("float", "double"):
        try:
            return float(text)
        except ValueError:
            pass
    elif kind == "boolean":
        if text in ("true", "false"):
            return text == "true"
    elif kind == "timestamp":
        # Query values are ISO 8601 and headers RFC 822 by default; either is accepted.
        parsed = _parse_time(text, "iso8601") or _parse_time(text, "rfc822")
        if parsed is not None:
            return parsed.timestamp()
    else:
        return text
    problems.append(f"{where}: {text!r} is not a valid {kind}")
    return _UNCHECKED


class _Unchecked(str):
    """A text value already reported as unparseable; later checks skip it."""


_UNCHECKED = _Unchecked("")


def _parse_time(text: str, form: str) -> datetime | None:
    try:
        if form == "rfc822":
            return parsedate_to_datetime(text)
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None


@functools.cache
def _pattern(source: str | None) -> regex.Pattern[str] | None:
    if not source:
        return None
    try:
        return regex.compile(source)
    except regex.error:  # a pattern the model itself mangled cannot be held against callers
        return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


@functools.cache
def load_index() -> ServiceIndex:
    """The Connect model from botocore's own data directory, indexed once per process."""
    loader = Loader(extra_search_paths=[str(BUILTIN_DATA)], include_default_search_paths=False)
    version = loader.determine_latest_version(SERVICE_NAME, "service-2")
    data, path = loader.load_data_with_path(f"{SERVICE_NAME}/{version}/service-2")
    source = Path(path)
    if not source.exists():  # the loader reports the name without the .gz it read
        source = source.with_name(source.name + ".json.gz")
    return ServiceIndex(ServiceModel(data, service_name=SERVICE_NAME), source)
