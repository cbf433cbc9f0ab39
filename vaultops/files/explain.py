"""Turn a msgspec ValidationError into (key path, problem, hint) for vaultops.files.loader.validate.

msgspec says `Expected `str`, got `int` - at `$.nodes[1].address``; vaultops says
`nodes[1].address: expected a string, got an integer`. The path is followed through the data
and the model together, so a dict entry msgspec shows as `[...]` gets its real key, an unknown
key gets the list of known ones, and an enum or date gets the offending value (never a field
that could hold a secret). Imported only when validation fails (or for dataclass models).
"""

from __future__ import annotations

import dataclasses
import enum
import re
import typing
from typing import Any, Literal

from vaultops.files.loader import Invalid, clean, shown

def unknown_key(data: Any, tp: Any, path: str) -> tuple[str, str, list[str]] | None:
    """The first key of *data* that a dataclass in *tp* does not have: (path, key, known keys)."""
    if isinstance(data, dict):
        record = _record_of(tp, data)
        if record is not None and dataclasses.is_dataclass(record):
            known = _field_names(record)
            extra = next((k for k in data if k not in known), None)
            if extra is not None:
                return path, str(extra), known
            hints = typing.get_type_hints(record)
            found = (unknown_key(v, hints[k], join(path, k)) for k, v in data.items())
        else:
            found = (unknown_key(v, _item_type(tp, dict), join(path, str(k))) for k, v in data.items())
    elif isinstance(data, list):
        found = (unknown_key(v, _item_type(tp, list), f"{path}[{i}]") for i, v in enumerate(data))
    else:
        return None
    return next((f for f in found if f is not None), None)


_QUOTE = "quote the value to make it a string"
_MESSAGE = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>[^`]*)`(?: in `(?P<outer>[^`]*)`)?)?$", re.S)
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
TYPES = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean (true/false)",
          "null": "nothing (null)", "object": "a mapping", "array": "a list", "bytes": "bytes"}


def explain(exc: Exception, data: Any, model: Any, *, yaml: bool = True) -> tuple[str, str, str | None]:
    """(key path, problem, hint) from a msgspec ValidationError; *yaml*: advice about quoting applies."""
    m = _MESSAGE.match(str(exc))
    assert m is not None  # the pattern matches any string
    msg, raw_path = m["msg"], m["outer"] or m["path"] or "$"
    spot = _walk(data, model, raw_path)
    cause = exc.__cause__
    if isinstance(cause, Invalid):
        return join(spot.path, clean(cause.key)), clean(cause.problem), cause.hint
    if m["outer"]:
        return spot.path, "every key must be a string", None
    path, problem, hint = _problem(msg, spot)
    return path, problem, hint if yaml or hint != _QUOTE else None


def _problem(msg: str, spot: _Spot) -> tuple[str, str, str | None]:
    if found := re.match(r"Object contains unknown field `(.*)`$", msg, re.S):
        known = spot.keys()
        return (spot.path, f"unknown key {shown(found[1])}",
                f"known keys: {', '.join(known)}" if known else None)
    if found := re.match(r"Object missing required field `(.*)`$", msg, re.S):
        return spot.path, f"missing key {shown(found[1])}", None
    if found := re.match(r"Expected `([\w |]+)`, got `(\w+)`$", msg):
        expected = [t for t in found[1].split(" | ") if t != "null"] or ["null"]
        hint = _QUOTE if "str" in expected else None
        return (spot.path, f"expected {' or '.join(TYPES.get(t, t) for t in expected)}, "
                           f"got {TYPES.get(found[2], found[2])}", hint)
    if msg.startswith(("Invalid enum value", "Invalid value")):
        choices = spot.choices()
        return (spot.path, f"{shown(spot.value)} is not one of: {', '.join(choices)}" if choices
                else f"{shown(spot.value)} is not allowed", None)
    if found := re.match(r"Invalid RFC3339 encoded (date|datetime|time)$", msg):
        form = {"date": "an ISO date (YYYY-MM-DD)", "datetime": "an ISO timestamp with time zone",
                "time": "an ISO time (HH:MM:SS)"}[found[1]]
        return spot.path, f"expected {form}, got {shown(spot.value)}", None
    if found := re.match(r"Expected `(\w+)` (.*)$", msg, re.S):
        return spot.path, f"expected {TYPES.get(found[1], found[1])} {clean(found[2])}", None
    return spot.path, clean(msg[:1].lower() + msg[1:]), None


class _Spot:
    """Where a msgspec error path points: the real key path, the value there and its model type."""

    def __init__(self, path: str, value: Any, tp: Any) -> None:
        self.path, self.value, self.tp = path, value, tp

    def keys(self) -> list[str]:
        record = _record_of(self.tp, self.value)
        return _field_names(record) if record is not None else []

    def choices(self) -> list[str]:
        args: list[Any] = []
        for option in _options(self.tp):
            if typing.get_origin(option) is typing.Literal:
                args += typing.get_args(option)
            elif isinstance(option, type) and issubclass(option, enum.Enum):
                args += [e.value for e in option]
        return [str(a) for a in args]


def _walk(data: Any, model: Any, raw_path: str) -> _Spot:
    """Follow msgspec's path (`$.a[0].b`, dict keys shown as `[...]`) through data and model."""
    path, value, tp = "", data, model
    for name, index in _SEGMENT.findall(raw_path.removeprefix("$")):
        if name:
            parent, value = value, value.get(name) if isinstance(value, dict) else None
            tp = _field_type(tp, parent, name)
            path = join(path, name)
        elif index == "...":
            key, value, tp = _bad_entry(value, tp)
            path = join(path, key)
        else:
            i = int(index)
            value = value[i] if isinstance(value, list) and i < len(value) else None
            tp = _item_type(tp, list)
            path += f"[{i}]"
    if isinstance(value, dict) and _record_of(tp, value) is not None:
        tp = _record_of(tp, value)
    return _Spot(path, value, tp)


def _bad_entry(mapping: Any, tp: Any) -> tuple[str, Any, Any]:
    """msgspec does not say which dict entry failed: find the first one that does not convert."""
    import msgspec

    value_type = _item_type(tp, dict)
    for key, value in (mapping.items() if isinstance(mapping, dict) else ()):
        try:
            msgspec.convert(value, value_type)
        except (msgspec.ValidationError, TypeError):
            return str(key), value, value_type
    return "...", None, value_type


def _options(tp: Any) -> tuple[Any, ...]:
    tp = _strip(tp)
    return tuple(_strip(a) for a in typing.get_args(tp)) if _is_union(tp) else (tp,)


def _strip(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    import types

    return typing.get_origin(tp) in (typing.Union, types.UnionType)


def _record_of(tp: Any, value: Any) -> Any:
    """The Struct or dataclass among *tp*'s options that *value* (a mapping) is meant to be."""
    records = [o for o in _options(tp) if hasattr(o, "__struct_fields__") or dataclasses.is_dataclass(o)]
    if len(records) > 1 and isinstance(value, dict):
        for option in records:
            config = getattr(option, "__struct_config__", None)
            if config is not None and config.tag_field and value.get(config.tag_field) == config.tag:
                return option
    return records[0] if records else None


def _field_names(record: Any) -> list[str]:
    if dataclasses.is_dataclass(record):
        return [f.name for f in dataclasses.fields(record)]
    tag_field = record.__struct_config__.tag_field
    return ([tag_field] if tag_field else []) + list(record.__struct_fields__)


def _field_type(tp: Any, value: Any, name: str) -> Any:
    record = _record_of(tp, value)
    if record is None:
        return None
    tags = [o.__struct_config__.tag for o in _options(tp)
            if hasattr(o, "__struct_config__") and o.__struct_config__.tag_field == name]
    if tags:  # the tag of a tagged union (e.g. a sink's `type`): its choices are the tags
        return Literal.__getitem__(tuple(tags))
    return typing.get_type_hints(record, include_extras=True).get(name)


def _item_type(tp: Any, container: type) -> Any:
    for option in _options(tp):
        if typing.get_origin(option) is container:
            args = typing.get_args(option)
            return args[-1] if args else Any
    return Any


def join(path: str, key: str) -> str:
    if not key:
        return path
    if not path or key.startswith("["):
        return f"{path}{key}"
    return f"{path}.{key}"


