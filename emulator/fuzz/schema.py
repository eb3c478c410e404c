"""Values valid against a JSON Schema, as a hypothesis strategy: the plugin configurations a filter
documents with a schema.

It covers what configuration schemas use: ``type`` (one or several), ``enum``, ``const``,
``properties`` / ``required`` / ``additionalProperties``, ``items`` (one schema, or a list for
tuples; or ``prefixItems``) with ``minItems`` / ``maxItems``, string ``minLength`` / ``maxLength`` / ``pattern``,
number ``minimum`` / ``maximum`` / ``exclusiveMinimum`` / ``exclusiveMaximum`` / ``multipleOf``,
``anyOf`` / ``oneOf`` / ``allOf`` (merged when they are plain objects), and local ``$ref``
(``#/definitions/...``, ``#/$defs/...``). A schema that uses anything else gets a clear error
naming the keyword, never values that would not validate.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

__all__ = ["UnsupportedSchema", "from_schema"]

_KNOWN = {
    "type", "enum", "const", "properties", "required", "additionalProperties", "items", "minItems", "maxItems",
    "minLength", "maxLength", "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf",
    "anyOf", "oneOf", "allOf", "$ref", "definitions", "$defs", "$schema", "$id", "title", "description", "default",
    "examples", "format", "$comment", "uniqueItems", "prefixItems",
}  # fmt: skip
_JSON_TYPES = ("null", "boolean", "integer", "number", "string", "array", "object")
_SCALARS = st.none() | st.booleans() | st.integers(-(2**31), 2**31) | st.text(max_size=16)
_ANY_JSON = st.recursive(_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


class UnsupportedSchema(ValueError):
    """The schema uses a keyword this generator cannot honour (named in the message)."""


def from_schema(schema: dict[str, Any] | bool) -> st.SearchStrategy[Any]:
    """A strategy for JSON values (dicts, lists, str, int, float, bool, None) valid against ``schema``."""
    return _strategy(schema, schema if isinstance(schema, dict) else {}, "#")


def _strategy(schema: dict[str, Any] | bool, root: dict[str, Any], where: str) -> st.SearchStrategy[Any]:
    if schema is True or schema == {}:
        return _ANY_JSON
    if schema is False:
        raise UnsupportedSchema(f"{where}: the schema 'false' accepts no value")
    unknown = sorted(set(schema) - _KNOWN)
    if unknown:
        raise UnsupportedSchema(f"{where}: JSON Schema keyword(s) {', '.join(unknown)} are not supported by the configuration generator")
    if "$ref" in schema:
        return _strategy(_resolve(schema["$ref"], root, where), root, schema["$ref"])
    if "const" in schema:
        return st.just(schema["const"])
    if "enum" in schema:
        return st.sampled_from(list(schema["enum"]))
    if "allOf" in schema:
        return _strategy(_merge(schema, where), root, where)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            rest = {k: v for k, v in schema.items() if k != key}
            branches = [
                _strategy({**rest, **branch} if isinstance(branch, dict) else branch, root, f"{where}/{key}/{i}") for i, branch in enumerate(schema[key])
            ]
            strategy = st.one_of(branches)
            if key == "oneOf":  # exactly one branch may match: keep values no other branch takes
                return strategy.filter(lambda v, s=schema[key], r=root: sum(_matches(b, v, r) for b in s) == 1)
            return strategy
    types = schema.get("type", _infer_type(schema))
    types = [types] if isinstance(types, str) else list(types)
    bad = [t for t in types if t not in _JSON_TYPES]
    if bad:
        raise UnsupportedSchema(f"{where}: unknown type(s) {bad}")
    return st.one_of([_typed(t, schema, root, where) for t in types])


def _infer_type(schema: dict[str, Any]) -> list[str]:
    if "properties" in schema or "additionalProperties" in schema or "required" in schema:
        return ["object"]
    if "items" in schema:
        return ["array"]
    if {"minLength", "maxLength", "pattern"} & set(schema):
        return ["string"]
    if {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"} & set(schema):
        return ["number"]
    return list(_JSON_TYPES)


def _typed(kind: str, s: dict[str, Any], root: dict[str, Any], where: str) -> st.SearchStrategy[Any]:
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    if kind in ("integer", "number"):
        lo = s.get("minimum")
        hi = s.get("maximum")
        if "exclusiveMinimum" in s:
            lo = s["exclusiveMinimum"] + (1 if kind == "integer" else 0)
        if "exclusiveMaximum" in s:
            hi = s["exclusiveMaximum"] - (1 if kind == "integer" else 0)
        if kind == "integer" or "multipleOf" in s:
            step = s.get("multipleOf", 1)
            lo_n = None if lo is None else -(-lo // step)
            hi_n = None if hi is None else hi // step
            return st.integers(lo_n, hi_n).map(lambda n, step=step: n * step)
        exclude = {"exclude_min": "exclusiveMinimum" in s, "exclude_max": "exclusiveMaximum" in s}
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False, **exclude)
    if kind == "string":
        if "pattern" in s:
            text = st.from_regex(s["pattern"])
            if "minLength" in s or "maxLength" in s:
                lo, hi = s.get("minLength", 0), s.get("maxLength", 1 << 30)
                text = text.filter(lambda t, lo=lo, hi=hi: lo <= len(t) <= hi)
            return text
        return st.text(min_size=s.get("minLength", 0), max_size=s.get("maxLength", max(16, s.get("minLength", 0))))
    if kind == "array":
        items = s.get("items", {})
        if "prefixItems" in s:  # draft 2020-12 tuples (exactly the listed items)
            items = s["prefixItems"]
        if isinstance(items, list):  # draft-07 tuples
            return st.tuples(*[_strategy(x, root, f"{where}/items/{i}") for i, x in enumerate(items)]).map(list)
        elements = _strategy(items, root, f"{where}/items")
        lo = s.get("minItems", 0)
        hi = s.get("maxItems", max(lo, 4))
        if s.get("uniqueItems"):
            return st.lists(elements, min_size=lo, max_size=hi, unique_by=repr)
        return st.lists(elements, min_size=lo, max_size=hi)
    # object
    props: dict[str, Any] = s.get("properties", {})
    required = list(s.get("required", []))
    missing = [r for r in required if r not in props]
    extra = s.get("additionalProperties", True)
    if missing and extra is False:
        raise UnsupportedSchema(f"{where}: required properties {missing} are neither in 'properties' nor allowed by 'additionalProperties'")
    fixed = {k: _strategy(v, root, f"{where}/properties/{k}") for k, v in props.items() if k in required}
    fixed.update({k: _strategy(extra if isinstance(extra, dict) else {}, root, f"{where}/additionalProperties") for k in missing})
    optional = {k: _strategy(v, root, f"{where}/properties/{k}") for k, v in props.items() if k not in required}
    strategy = st.fixed_dictionaries(fixed, optional=optional)
    if isinstance(extra, dict):
        more = st.dictionaries(
            st.text(min_size=1, max_size=8).filter(lambda k: k not in props), _strategy(extra, root, f"{where}/additionalProperties"), max_size=2
        )
        strategy = st.tuples(strategy, more).map(lambda p: {**p[1], **p[0]})
    return strategy


def _resolve(ref: str, root: dict[str, Any], where: str) -> Any:
    if not ref.startswith("#/"):
        raise UnsupportedSchema(f"{where}: only local references (#/...) are supported, not {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            raise UnsupportedSchema(f"{where}: reference {ref!r} points nowhere")
        node = node[part]
    return node


def _merge(schema: dict[str, Any], where: str) -> dict[str, Any]:
    """``allOf`` of plain object schemas, merged into one (properties and required united)."""
    out = {k: v for k, v in schema.items() if k != "allOf"}
    for part in schema["allOf"]:
        if not isinstance(part, dict) or {"anyOf", "oneOf", "allOf", "$ref"} & set(part):
            raise UnsupportedSchema(f"{where}: allOf is supported for plain schemas only")
        for k, v in part.items():
            if k == "properties":
                out["properties"] = {**out.get("properties", {}), **v}
            elif k == "required":
                out["required"] = sorted(set(out.get("required", [])) | set(v))
            elif k in out and out[k] != v:
                raise UnsupportedSchema(f"{where}: allOf parts disagree on {k!r}")
            else:
                out[k] = v
    return out


def _matches(schema: Any, value: Any, root: dict[str, Any]) -> bool:
    """A small validator for ``oneOf``: whether ``value`` fits ``schema`` (the keywords above)."""
    if schema is True or schema == {}:
        return True
    if schema is False:
        return False
    if "$ref" in schema:
        return _matches(_resolve(schema["$ref"], root, "#"), value, root)
    if "const" in schema:
        return value == schema["const"]
    if "enum" in schema:
        return value in schema["enum"]
    types = schema.get("type")
    if types is not None:
        types = [types] if isinstance(types, str) else types
        kinds = {
            "null": value is None,
            "boolean": isinstance(value, bool),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, int | float) and not isinstance(value, bool),
            "string": isinstance(value, str),
            "array": isinstance(value, list),
            "object": isinstance(value, dict),
        }
        if not any(kinds.get(t, False) for t in types):
            return False
    if isinstance(value, dict):
        props = schema.get("properties", {})
        if any(r not in value for r in schema.get("required", [])):
            return False
        if schema.get("additionalProperties") is False and any(k not in props for k in value):
            return False
        return all(_matches(props[k], v, root) for k, v in value.items() if k in props)
    return True
