"""One validated loader for every file vaultops reads.

    data = read_yaml(path, cap=CONFIG_CAP)                 # bounded, strict YAML -> plain data
    doc = validate(data, Model, source=str(path))          # typed, or ONE error naming file and key
    doc = load_yaml(path, Model, error=RunbookError)       # both at once (load_json for JSON)

The reader refuses what an operator never means and an attacker might: files over a size
cap (checked before reading, and never read past it), bytes that are not UTF-8, duplicate
keys, keys that are not strings, anchors and aliases (so no billion-laughs expansion),
tags (no `!!python/...`, `!!binary`, `!!set`), nesting deeper than MAX_DEPTH, non-finite
numbers. Dates stay strings until a model types them, so an impossible date is a
validation error naming its key, not a crash inside the YAML library.

Models are msgspec Structs (forbid_unknown_fields): chosen over pydantic because importing
it and building the models costs ~10 ms instead of ~100 ms, and `vaultops status` loads
vaultops.yaml on every call (see scripts/bench/status_latency.py). Every model field
carries a description (`Annotated[T, Meta(description=...)]`): `msgspec.json.schema(Model)`
is the reference of the file's keys. Checks a type cannot express live in `__post_init__`
and raise `Invalid(key, problem, hint)`.

Errors are one line: `<file>: <key path>: <problem> (<hint>)`, e.g.
`vaultops.yaml: nodes[1].driver: expected a mapping, got a string (...)`. Each caller
chooses the error class (ConfigError, BackupError, RunbookError) so exit codes stay
as documented. Values are shown only where they cannot be secrets (enums, dates).
"""

from __future__ import annotations

import dataclasses
import enum
import math
import os
import re
import stat
import typing
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from vaultops.errors import ConfigError, VaultOpsError

if TYPE_CHECKING:
    import msgspec

KiB = 1024
MiB = 1024 * KiB
CONFIG_CAP = 1 * MiB    # vaultops.yaml (a 100-node file with TLS per node is ~30 KiB), manifests, runbooks
STATE_CAP = 8 * MiB     # runbook state: JSON that grows with step evidence and history
SECRET_CAP = 64 * KiB   # token and secret files: a token is ~100 bytes
MAX_DEPTH = 64          # nesting of mappings/lists; vaultops' own files need < 10

T = TypeVar("T")
ErrorType = type[VaultOpsError]


class Invalid(ValueError):
    """Raised in a model's __post_init__: *key* (relative to the model) has *problem*."""

    def __init__(self, key: str, problem: str, hint: str | None = None) -> None:
        self.key = key
        self.problem = problem
        self.hint = hint
        super().__init__(f"{key}: {problem}")


# -- reading ------------------------------------------------------------------------------


def read_bytes(path: str | os.PathLike[str], *, cap: int, error: ErrorType = ConfigError,
               what: str = "file", missing: str = "check the path") -> bytes:
    """At most *cap* bytes of a regular file (or pipe); larger files are refused unread.

    *what* names the file in messages; *missing* is the hint when it does not exist.
    """
    source = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        raise error(f"{source}: {what} not found", hint=missing) from None
    except OSError as exc:
        raise error(f"{source}: cannot read the {what} ({exc.strerror})",
                    hint="check the path and its permissions") from None
    info = os.fstat(fd)
    if not (stat.S_ISREG(info.st_mode) or stat.S_ISFIFO(info.st_mode)):  # a directory, /dev/zero, a tty...
        os.close(fd)
        raise error(f"{source}: the {what} is not a regular file", hint="give the path of a file")
    with os.fdopen(fd, "rb") as fh:
        if info.st_size > cap:
            raise too_big(source, len_=info.st_size, cap=cap, error=error, what=what)
        try:
            data = fh.read(cap + 1)
        except OSError as exc:
            raise error(f"{source}: cannot read the {what} ({exc.strerror})", hint="check the file") from None
    if len(data) > cap:  # it grew, or a pipe/proc file whose size stat does not know
        raise too_big(source, len_=None, cap=cap, error=error, what=what)
    return data


def too_big(source: str, *, len_: int | None, cap: int, error: ErrorType = ConfigError,
            what: str = "file") -> VaultOpsError:
    """The error for content over its size cap (*len_* None: size unknown, reading stopped at the cap)."""
    size = f"is {_size(len_)}, over" if len_ is not None else "is over"
    return error(f"{source}: the {what} {size} the {_size(cap)} limit",
                 hint=f"a vaultops {what} is far smaller: is this the right file?")


def read_text(path: str | os.PathLike[str], *, cap: int, error: ErrorType = ConfigError,
              what: str = "file", missing: str = "check the path") -> str:
    data = read_bytes(path, cap=cap, error=error, what=what, missing=missing)
    return decode(data, source=str(path), error=error)


def decode(data: bytes, *, source: str, error: ErrorType = ConfigError) -> str:
    """Strict UTF-8 (a leading BOM is dropped); the error names the line of the first bad byte."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise error(f"{source}: line {line}: not UTF-8 text (byte {exc.start})",
                    hint="save the file as UTF-8") from None
    return text.removeprefix("\ufeff")


def read_yaml(path: str | os.PathLike[str], *, cap: int = CONFIG_CAP, error: ErrorType = ConfigError,
              what: str = "file", missing: str = "check the path") -> Any:
    text = read_text(path, cap=cap, error=error, what=what, missing=missing)
    return parse_yaml(text, source=str(path), error=error)


def read_json(path: str | os.PathLike[str], *, cap: int = CONFIG_CAP, error: ErrorType = ConfigError,
              what: str = "file", missing: str = "check the path") -> Any:
    data = read_bytes(path, cap=cap, error=error, what=what, missing=missing)
    return parse_json(data, source=str(path), error=error)


def load_yaml(path: str | os.PathLike[str], model: type[T], *, cap: int = CONFIG_CAP,
              error: ErrorType = ConfigError, what: str = "file", hint: str | None = None) -> T:
    data = read_yaml(path, cap=cap, error=error, what=what)
    return validate(data, model, source=str(path), error=error, hint=hint)


def load_json(path: str | os.PathLike[str], model: type[T], *, cap: int = CONFIG_CAP,
              error: ErrorType = ConfigError, what: str = "file", hint: str | None = None) -> T:
    data = read_json(path, cap=cap, error=error, what=what)
    return validate(data, model, source=str(path), error=error, hint=hint, yaml=False)


def _size(n: int) -> str:
    return f"{n / MiB:.1f} MiB" if n >= MiB else f"{n / KiB:.0f} KiB" if n >= KiB else f"{n} bytes"


# -- YAML ---------------------------------------------------------------------------------


def parse_yaml(text: str, *, source: str, error: ErrorType = ConfigError) -> Any:
    """Plain data from YAML text, refusing what read_yaml's docstring lists."""
    import yaml

    from vaultops import strict_yaml

    loader = strict_yaml.StrictLoader(text)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}" if mark else "(top)"
        if isinstance(exc, strict_yaml.Refused):
            raise error(f"{source}: {where}: {clean(exc.problem or '')}", hint=strict_yaml.HINT) from None
        raise error(f"{source}: {where}: not valid YAML ({clean(exc.problem or exc.context or '')})",
                    hint="fix the syntax") from None
    except yaml.reader.ReaderError as exc:
        line = text.count("\n", 0, exc.position) + 1
        char = exc.character if isinstance(exc.character, int) else ord(exc.character[:1] or "\0")
        raise error(f"{source}: line {line}: character U+{char:04X} is not allowed in YAML",
                    hint="remove control characters from the file") from None
    except yaml.YAMLError as exc:
        raise error(f"{source}: not valid YAML ({clean(str(exc))})", hint="fix the syntax") from None
    except RecursionError:
        raise error(f"{source}: nested too deeply", hint=strict_yaml.HINT) from None
    finally:
        loader.dispose()


# -- JSON ---------------------------------------------------------------------------------


def parse_json(data: bytes | str, *, source: str, error: ErrorType = ConfigError) -> Any:
    """Plain data from JSON, refusing duplicate keys, NaN/Infinity and nesting deeper than MAX_DEPTH."""
    import json

    text = decode(data, source=source, error=error) if isinstance(data, bytes) else data
    if not text.strip():
        raise error(f"{source}: the file is empty", hint="the file is damaged: restore or remove it")

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in items:
            if key in out:
                raise error(f"{source}: duplicate key {shown(key)}", hint="remove one of them")
            out[key] = value
        return out

    def constant(name: str) -> Any:
        raise error(f"{source}: {name} is not a number vaultops accepts", hint="write a finite number")

    def number(literal: str) -> float:
        value = float(literal)
        return value if math.isfinite(value) else constant(literal[:20])

    try:
        value = json.loads(text, object_pairs_hook=pairs, parse_constant=constant, parse_float=number)
    except json.JSONDecodeError as exc:
        raise error(f"{source}: line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})",
                    hint="the file is damaged: restore or remove it") from None
    except (RecursionError, ValueError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else clean(str(exc))
        raise error(f"{source}: not valid JSON ({problem})", hint="the file is damaged") from None
    if _depth(value) > MAX_DEPTH:
        raise error(f"{source}: nested deeper than {MAX_DEPTH} levels", hint="the file is damaged")
    return value


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level + 1)
    return level


# -- validation ---------------------------------------------------------------------------


def validate(data: Any, model: type[T], *, source: str, error: ErrorType = ConfigError,
             prefix: str = "", hint: str | None = None, yaml: bool = True) -> T:
    """*data* as an instance of *model* (a msgspec Struct or a dataclass), or ONE *error* naming file, key, problem.

    *prefix* is the key path of *data* inside its file (a section validated on its own);
    *hint* replaces the default hint (what to do next); *yaml* False: the data came from
    JSON (no advice about quoting).
    """
    import msgspec

    if data is None and not prefix:
        raise error(f"{source}: the file is empty", hint=hint or "see the documentation for its keys")
    both = lambda own: "; ".join(h for h in (own, hint) if h) or _DEFAULT_HINT  # noqa: E731
    try:
        value = msgspec.convert(data, model)
    except msgspec.ValidationError as exc:
        key, problem, own_hint = _explain(exc, data, model)
        own_hint = None if own_hint == _QUOTE and not yaml else own_hint
        raise error(f"{source}: {_join(prefix, key) or '(top)'}: {problem}", hint=both(own_hint)) from None
    if dataclasses.is_dataclass(model):  # msgspec refuses unknown keys only for Structs
        unknown = _unknown_key(data, model, "")
        if unknown is not None:
            path, key, known = unknown
            raise error(f"{source}: {_join(prefix, path) or '(top)'}: unknown key {shown(key)}",
                        hint=both(f"known keys: {', '.join(known)}")) from None
    return value


def _unknown_key(data: Any, tp: Any, path: str) -> tuple[str, str, list[str]] | None:
    """The first key of *data* that a dataclass in *tp* does not have: (path, key, known keys)."""
    if isinstance(data, dict):
        record = _record_of(tp, data)
        if record is not None and dataclasses.is_dataclass(record):
            known = _field_names(record)
            extra = next((k for k in data if k not in known), None)
            if extra is not None:
                return path, str(extra), known
            hints = typing.get_type_hints(record)
            found = (_unknown_key(v, hints[k], _join(path, k)) for k, v in data.items())
        else:
            found = (_unknown_key(v, _item_type(tp, dict), _join(path, str(k))) for k, v in data.items())
    elif isinstance(data, list):
        found = (_unknown_key(v, _item_type(tp, list), f"{path}[{i}]") for i, v in enumerate(data))
    else:
        return None
    return next((f for f in found if f is not None), None)


_DEFAULT_HINT = "fix that key in the file and try again"
_QUOTE = "quote the value to make it a string"
_MESSAGE = re.compile(r"^(?P<msg>.*?)(?: - at `(?P<path>[^`]*)`(?: in `(?P<outer>[^`]*)`)?)?$", re.S)
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+|\.\.\.)\]")
_TYPES = {"str": "a string", "int": "an integer", "float": "a number", "bool": "a boolean (true/false)",
          "null": "nothing (null)", "object": "a mapping", "array": "a list", "bytes": "bytes"}


def _explain(exc: Exception, data: Any, model: Any) -> tuple[str, str, str | None]:
    """(key path, problem, hint) from a msgspec ValidationError."""
    m = _MESSAGE.match(str(exc))
    assert m is not None  # the pattern matches any string
    msg, raw_path = m["msg"], m["outer"] or m["path"] or "$"
    spot = _walk(data, model, raw_path)
    cause = exc.__cause__
    if isinstance(cause, Invalid):
        return _join(spot.path, clean(cause.key)), clean(cause.problem), cause.hint
    if m["outer"]:
        return spot.path, "every key must be a string (quote it)", None
    return _problem(msg, spot)


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
        return (spot.path, f"expected {' or '.join(_TYPES.get(t, t) for t in expected)}, "
                           f"got {_TYPES.get(found[2], found[2])}", hint)
    if msg.startswith(("Invalid enum value", "Invalid value")):
        choices = spot.choices()
        return (spot.path, f"{shown(spot.value)} is not one of: {', '.join(choices)}" if choices
                else f"{shown(spot.value)} is not allowed", None)
    if found := re.match(r"Invalid RFC3339 encoded (date|datetime|time)$", msg):
        form = {"date": "an ISO date (YYYY-MM-DD)", "datetime": "an ISO timestamp with time zone",
                "time": "an ISO time (HH:MM:SS)"}[found[1]]
        return spot.path, f"expected {form}, got {shown(spot.value)}", None
    if found := re.match(r"Expected `(\w+)` (.*)$", msg, re.S):
        return spot.path, f"expected {_TYPES.get(found[1], found[1])} {clean(found[2])}", None
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
            path = _join(path, name)
        elif index == "...":
            key, value, tp = _bad_entry(value, tp)
            path = _join(path, key)
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


def _join(path: str, key: str) -> str:
    if not key:
        return path
    if not path or key.startswith("["):
        return f"{path}{key}"
    return f"{path}.{key}"


# -- safe text --------------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def clean(text: str, limit: int = 300) -> str:
    """One printable line: control characters escaped, long text cut."""
    text = _CONTROL.sub(lambda m: ascii(m[0])[1:-1], text)
    return text if len(text) <= limit else text[:limit] + "…"


def shown(value: Any, limit: int = 40) -> str:
    """A value safe to print in an error (ASCII-escaped, cut); only call it on non-secret values."""
    if isinstance(value, str):
        text = ascii(value[:limit])
        return text + ("…" if len(value) > limit else "")
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    return clean(repr(value), limit)


def describe(value: Any) -> str:
    """What kind of value this is, for an error message that must not show the value."""
    if isinstance(value, bool):
        return _TYPES["bool"]
    return _TYPES.get({str: "str", int: "int", float: "float", dict: "object", list: "array",
                       type(None): "null"}.get(type(value), ""), type(value).__name__)


def schema(model: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON Schema of *model*, with every field's description (for reference docs)."""
    import msgspec

    return msgspec.json.schema(model)


__all__ = ["CONFIG_CAP", "MAX_DEPTH", "SECRET_CAP", "STATE_CAP", "Invalid", "clean", "decode", "describe",
           "too_big",
           "load_json", "load_yaml", "parse_json", "parse_yaml", "read_bytes", "read_json", "read_text",
           "read_yaml", "schema", "shown", "validate"]
