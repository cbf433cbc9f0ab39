"""The YAML dialect vaultops reads: plain data only. Used through vaultops.files.loader.

libyaml (C) scans and parses when PyYAML has it (4x faster at the size cap); composition
is ours, so anchors, aliases, tags and deep nesting are refused event by event, before
anything is built — a billion-laughs document stops at its first anchor. Timestamps,
merge keys (`<<`) and `=` are not resolved: a date stays a string for the model to type.
"""

from __future__ import annotations

import math
from typing import Any

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode
from yaml.resolver import Resolver

try:
    from yaml.cyaml import CParser as _Parser  # type: ignore[attr-defined,unused-ignore]
except ImportError:  # PyYAML built without libyaml
    from yaml.parser import Parser
    from yaml.reader import Reader
    from yaml.scanner import Scanner

    class _Parser(Reader, Scanner, Parser):  # type: ignore[no-redef]
        def __init__(self, stream: str) -> None:
            Reader.__init__(self, stream)
            Scanner.__init__(self)
            Parser.__init__(self)

HINT = "vaultops reads plain YAML: no anchors, aliases or tags, string keys, each key once"
MAX_DEPTH = 64
_CORE = "tag:yaml.org,2002:"
STR_TAG = _CORE + "str"
_ALLOWED_TAGS = {_CORE + t for t in ("str", "int", "float", "bool", "null", "seq", "map")}
_NOT_RESOLVED = {_CORE + t for t in ("timestamp", "merge", "value")}


class Refused(yaml.MarkedYAMLError):
    """Valid YAML that vaultops does not accept (an anchor, a tag, a duplicate key...)."""


def _refuse(problem: str, node_or_event: Any) -> Refused:
    return Refused(problem=problem, problem_mark=node_or_event.start_mark)


class _Resolver(Resolver):
    yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag not in _NOT_RESOLVED]
        for first, resolvers in Resolver.yaml_implicit_resolvers.items()
    }


class _Composer(Composer):
    _depth = 0
    peek_event: Any  # from the parser it is mixed with

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event = self.peek_event()
        if isinstance(event, AliasEvent):
            raise _refuse(f"alias *{event.anchor} is not allowed (write the value out)", event)
        if event.anchor is not None:
            raise _refuse(f"anchor &{event.anchor} is not allowed", event)
        tag = getattr(event, "tag", None)
        if isinstance(event, (ScalarEvent, CollectionStartEvent)) and tag not in (None, "!") \
                and tag not in _ALLOWED_TAGS:
            raise _refuse(f"tag {tag.replace(_CORE, '!!')[:60]!r} is not allowed", event)
        if tag == "!":
            raise _refuse("the non-specific tag '!' is not allowed", event)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _refuse(f"nested deeper than {MAX_DEPTH} levels", event)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _Constructor(SafeConstructor):
    yaml_constructors = {}  # only the plain-data tags registered below (none of SafeConstructor's)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError, TypeError) as exc:  # e.g. an int of 5000 digits
            raise _refuse(f"cannot read this value ({type(exc).__name__})", node) from None

    def strict_mapping(self, node: MappingNode) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode) or key_node.tag != STR_TAG:
                raise _refuse("every key must be a string (quote it)", key_node)
            key = key_node.value
            if key in out:
                raise _refuse(f"duplicate key {ascii(key[:40])}", key_node)
            out[key] = self.construct_object(value_node, deep=True)
        return out

    def strict_sequence(self, node: Node) -> list[Any]:
        return [self.construct_object(child, deep=True) for child in node.value]

    def finite_float(self, node: ScalarNode) -> float:
        value = self.construct_yaml_float(node)
        if not math.isfinite(value):
            raise _refuse("only finite numbers are allowed", node)
        return value


for _tag, _fn in (("null", SafeConstructor.construct_yaml_null), ("bool", SafeConstructor.construct_yaml_bool),
                  ("int", SafeConstructor.construct_yaml_int), ("float", _Constructor.finite_float),
                  ("str", SafeConstructor.construct_yaml_str), ("seq", _Constructor.strict_sequence),
                  ("map", _Constructor.strict_mapping)):
    _Constructor.add_constructor(_CORE + _tag, _fn)  # type: ignore[type-var]


class StrictLoader(_Parser, _Composer, _Constructor, _Resolver):  # type: ignore[misc]
    # The Python composer's methods, not libyaml's (which would accept aliases).
    check_node = _Composer.check_node
    get_node = _Composer.get_node
    get_single_node = _Composer.get_single_node
    compose_document = _Composer.compose_document

    def __init__(self, stream: str) -> None:
        _Parser.__init__(self, stream)
        _Composer.__init__(self)
        _Constructor.__init__(self)
        _Resolver.__init__(self)
