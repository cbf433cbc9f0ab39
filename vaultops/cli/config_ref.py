"""The reference of vaultops.yaml, generated from the schema the loader validates (vaultops.schema).

    for section in sections(): section.path, section.description, section.keys   # one per mapping
    markdown() -> str                  # docs/configuration.md (a test fails when they differ)

The walk reads `vaultops.files.loader.schema(ConfigFile)` (JSON Schema built by msgspec from the
very models `load_config` uses), so a key added to a model appears here with its type, default
and description, and an example (vaultops.cli.config_example) is built from the same walk.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

MISSING: Any = object()
NULL = {"type": "null"}
_PLAIN = re.compile(r"^[A-Za-z0-9_./@~<>][A-Za-z0-9_./:@<>~ -]*$")
_YAML_WORDS = {"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"}


@dataclass(frozen=True)
class Key:
    name: str
    kind: str                 # "value", "struct", "list" (of structs), "dict" (name -> struct)
    type: str                 # how the reference shows it
    description: str
    required: bool
    default: Any = MISSING
    structs: tuple[str, ...] = ()   # the model(s) of a struct/list/dict value; several: tagged by `type`


@dataclass
class Section:
    """One mapping of the file: a top-level section or a mapping inside one."""

    path: str                 # e.g. "backup.retention", "nodes[]", "backup.sinks[] (type: s3)"
    base: str                 # the path without the variant: keys below it are base.key
    model: str
    description: str
    keys: list[Key] = field(default_factory=list)
    same_as: str | None = None   # a model already shown under another path


def document() -> dict[str, Any]:
    from vaultops.files.loader import schema
    from vaultops.schema import ConfigFile

    return schema(ConfigFile)


def _defs() -> dict[str, Any]:
    return dict(document()["$defs"])


def keys_of(defs: dict[str, Any], model: str) -> list[Key]:
    spec = defs[model]
    required = set(spec.get("required", ()))
    return [_key(defs, name, prop, name in required) for name, prop in spec["properties"].items()]


def _key(defs: dict[str, Any], name: str, prop: dict[str, Any], required: bool) -> Key:
    default = prop.get("default", MISSING)
    body = {k: v for k, v in prop.items() if k not in ("description", "default")}
    kind, text, structs = _shape(defs, body)
    return Key(name=name, kind=kind, type=text, description=prop.get("description", ""), required=required,
               default=default, structs=structs)


def _shape(defs: dict[str, Any], p: dict[str, Any]) -> tuple[str, str, tuple[str, ...]]:
    """(kind, type text, models) of a property schema."""
    options = [o for o in p.get("anyOf", ()) if o != NULL]
    if options and p.get("items") is None and "discriminator" not in p:
        if len(options) == 1:
            return _shape(defs, options[0])
        return "value", " or ".join(_shape(defs, o)[1] for o in options), ()
    if "$ref" in p:
        model = p["$ref"].rsplit("/", 1)[1]
        if "enum" in defs[model]:
            return "value", _enum(defs[model]["enum"]), ()
        return "struct", "mapping", (model,)
    if "enum" in p:
        return "value", _enum(p["enum"]), ()
    if p.get("type") == "array":
        kind, text, structs = _shape(defs, p.get("items", {}))
        if structs:
            return "list", "list of mappings", structs
        return "value", f"list of {text}{_limits(p)}", ()
    if p.get("type") == "object":
        inner = p.get("additionalProperties")
        if isinstance(inner, dict) and "$ref" in inner:
            return "dict", "mapping of name to mapping", (inner["$ref"].rsplit("/", 1)[1],)
        if isinstance(inner, dict) and inner.get("type"):
            return "value", f"mapping of name to {inner['type']}", ()
        return "value", "mapping (free-form)", ()
    if "anyOf" in p:  # a tagged union of models
        refs = tuple(o["$ref"].rsplit("/", 1)[1] for o in p["anyOf"] if "$ref" in o)
        return "struct", "mapping", refs
    return "value", f"{p.get('type', 'any')}{_limits(p)}", ()


def _enum(values: list[Any]) -> str:
    return " | ".join(str(v) for v in values)


def _limits(p: dict[str, Any]) -> str:
    marks = {"minimum": ">=", "exclusiveMinimum": ">", "maximum": "<=", "exclusiveMaximum": "<",
             "minLength": "length >=", "minItems": "items >="}
    found = [f"{sign} {p[name]}" for name, sign in marks.items() if name in p]
    return f" ({', '.join(found)})" if found else ""


def tag_of(defs: dict[str, Any], model: str) -> str | None:
    """The `type:` value that selects *model* in a tagged union (backup.sinks), else None."""
    tag = defs[model]["properties"].get("type", {})
    return str(tag["enum"][0]) if len(tag.get("enum", ())) == 1 else None


def sections() -> list[Section]:
    """Every mapping of vaultops.yaml, top-level sections first in file order, each model shown once."""
    defs = _defs()
    out: list[Section] = []
    shown: dict[str, str] = {}
    for key in keys_of(defs, "ConfigFile"):
        out += _walk(defs, key, key.name, shown)
    return out


def _walk(defs: dict[str, Any], key: Key, path: str, shown: dict[str, str]) -> Iterator[Section]:
    if key.kind == "value":
        if "." not in path:  # a top-level key that is not a mapping of keys
            yield Section(path, path, "", key.description)
        return
    suffix = {"list": "[]", "dict": ".<name>"}.get(key.kind, "")
    for model in key.structs:
        tag = tag_of(defs, model) if len(key.structs) > 1 else None
        where = f"{path}{suffix}" + (f" (type: {tag})" if tag else "")
        description = key.description if len(key.structs) == 1 else defs[model].get("description", "")
        if model in shown:
            yield Section(where, f"{path}{suffix}", model, description, same_as=shown[model])
            continue
        shown[model] = where
        keys = keys_of(defs, model)
        yield Section(where, f"{path}{suffix}", model, description, keys)
        for sub in keys:
            yield from _walk(defs, sub, f"{path}{suffix}.{sub.name}", shown)


def scalar(value: Any) -> str:
    """A value as YAML writes it (flow style for mappings and lists)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}" if "e" not in f"{value:g}" else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {scalar(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(scalar(v) for v in value) + "]"
    text = str(value)
    plain = _PLAIN.match(text) and text.lower() not in _YAML_WORDS and not re.match(r"^[-+.\d]", text)
    return text if plain and not text.endswith(" ") else json.dumps(text)


# -- docs/configuration.md --------------------------------------------------------------------

INTRO = """# vaultops.yaml reference

<!-- Generated by `vaultops config reference` from vaultops/schema.py (the models the loader
validates): do not edit by hand; tests/unit/test_config_reference.py fails when they differ. -->

vaultops reads `vaultops.yaml` from `--config FILE`, `$VAULTOPS_CONFIG`, `./vaultops.yaml`, then
`~/.config/vaultops/vaultops.yaml`; with none, one node from `VAULT_ADDR` (or `BAO_ADDR`) is used.
Relative paths in the file are relative to the file's folder. Unknown keys are refused, and an error
names the file and the key.

- `vaultops config check [--config FILE]` validates a file (exit 0, or 2 with the one error).
- `vaultops config example [SECTION]` prints a commented example (of one section) that passes the check.

Free-form mappings (a node's `driver`, `journal.anchor`, `tls.dns_provider`, `upgrade.lease`) are
checked by the plugin that reads them, when it reads them.
"""


def markdown() -> str:
    out = [INTRO, "## Sections", "", "| section | type | required | what it is for |", "|---|---|---|---|"]
    top = keys_of(_defs(), "ConfigFile")
    out += [f"| [`{k.name}`](#{k.name}) | {k.type} | {'yes' if k.required else 'no'} | {_cell(k.description)} |"
            for k in top]
    for section in sections():
        out += ["", f"{'###' if '.' in section.base else '##'} `{section.path}`", ""]
        if section.description:
            out += [_sentence(section.description), ""]
        if section.same_as:
            out.append(f"The same keys as [`{section.same_as}`](#{_anchor(section.same_as)}).")
        elif section.keys:
            out += ["| key | type | default | description |", "|---|---|---|---|"]
            out += [_row(section.base, k) for k in section.keys]
        else:
            out.append(f"Type: {top[[k.name for k in top].index(section.path)].type}.")
    return "\n".join(out) + "\n"


def _row(base: str, key: Key) -> str:
    if key.required:
        default = "required"
    elif key.default is MISSING or key.default is None:
        default = "-"
    else:
        default = f"`{scalar(key.default)}`"
    kind = _cell(key.type)
    if key.kind != "value":
        below = f"{base}.{key.name}{ {'list': '[]', 'dict': '.<name>'}.get(key.kind, '')}"
        defs = _defs()
        tags = [str(tag_of(defs, m)) for m in key.structs] if len(key.structs) > 1 else []
        first = f"{below} (type: {tags[0]})" if tags else below
        kind += f" (see [`{below}`](#{_anchor(first)}){' by type: ' + ', '.join(tags) if tags else ''})"
    description = key.description or ("selects this kind" if key.name == "type" else "")
    return f"| `{key.name}` | {kind} | {default} | {_cell(description)} |"


def _cell(text: str) -> str:
    """Text for a table cell: `|` escaped, and `<...>` outside code spans shown, not taken for HTML."""
    parts = text.replace("|", "\\|").split("`")
    return "`".join(p if i % 2 else p.replace("<", "&lt;").replace(">", "&gt;") for i, p in enumerate(parts))


def _sentence(text: str) -> str:
    text = text.strip()
    return text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")


def _anchor(path: str) -> str:
    """GitHub's anchor of a `## `path`` heading."""
    return re.sub(r"[^a-z0-9 _-]", "", path.lower()).replace(" ", "-")
