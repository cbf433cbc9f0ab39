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

Models are msgspec Structs (vaultops.files.model.Model: unknown keys refused), or the dataclass a
file already mirrors (run state, backup manifest, sandbox record; unknown keys are refused
here). msgspec, not pydantic: importing it and building vaultops.yaml's models costs ~10 ms
instead of ~100 ms, and `vaultops status` loads vaultops.yaml on every call (see
scripts/bench/status_latency.py). Every model field carries a description
(`Annotated[T, Meta(description=...)]`): schema(Model) is the reference of the file's keys.
Checks a type cannot express live in `__post_init__` and raise `Invalid(key, problem, hint)`;
vaultops.files.explain turns failures into words (imported only when validation fails).

Errors are one line: `<file>: <key path>: <problem> (<hint>)`, e.g.
`vaultops.yaml: nodes[1].driver: expected a mapping, got a string (...)`. Each caller
chooses the error class (ConfigError, BackupError, RunbookError) so exit codes stay
as documented. Values are shown only where they cannot be secrets (enums, dates).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import stat
from typing import TYPE_CHECKING, Any, TypeVar

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

    from vaultops.files import strict_yaml

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
    try:
        value = msgspec.convert(data, model)
    except msgspec.ValidationError as exc:
        from vaultops.files.explain import explain, join

        key, problem, own_hint = explain(exc, data, model, yaml=yaml)
        raise error(f"{source}: {join(prefix, key) or '(top)'}: {problem}", hint=_hints(own_hint, hint)) from None
    if dataclasses.is_dataclass(model):  # msgspec refuses unknown keys only for Structs
        from vaultops.files.explain import join, unknown_key

        unknown = unknown_key(data, model, "")
        if unknown is not None:
            path, key, known = unknown
            raise error(f"{source}: {join(prefix, path) or '(top)'}: unknown key {shown(key)}",
                        hint=_hints(f"known keys: {', '.join(known)}", hint)) from None
    return value


def _hints(own: str | None, caller: str | None) -> str:
    return "; ".join(h for h in (own, caller) if h) or "fix that key in the file and try again"


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
    from vaultops.files.explain import TYPES

    if isinstance(value, bool):
        return TYPES["bool"]
    return TYPES.get({str: "str", int: "int", float: "float", dict: "object", list: "array",
                      type(None): "null"}.get(type(value), ""), type(value).__name__)


def schema(model: type[msgspec.Struct]) -> dict[str, Any]:
    """The JSON Schema of *model*, with every field's description (for reference docs)."""
    import msgspec

    return msgspec.json.schema(model)


__all__ = ["CONFIG_CAP", "MAX_DEPTH", "SECRET_CAP", "STATE_CAP", "Invalid", "clean", "decode", "describe",
           "too_big",
           "load_json", "load_yaml", "parse_json", "parse_yaml", "read_bytes", "read_json", "read_text",
           "read_yaml", "schema", "shown", "validate"]
