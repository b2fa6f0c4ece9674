"""Reading a YAML settings file: the shipped default from a package, or the user's file, strictly
(YAML 1.2 booleans and floats, keys written twice refused); an error names the file, the line
and the key."""

from __future__ import annotations

import difflib
import re
import types
import typing
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from features.errors import ConfigError

_BOOL = "tag:yaml.org,2002:bool"


class StrictLoader(yaml.SafeLoader):
    """YAML 1.2 booleans (only true/false): under YAML 1.1 a condition's `on:` key, and values
    such as `no` or `off`, would silently turn into true and false."""


StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(
    _BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)
# YAML 1.2 floats too: YAML 1.1 needs a dot and a signed exponent, so `1e-3` (a learning
# rate) and `2.5e3` would be read as text. Tried after 1.1's own float and int patterns.
StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


M = TypeVar("M", bound=BaseModel)
Loc = tuple[int | str, ...]
# What a value of the wrong type should have been, when a union allows several.
WANTED = {"model_type": "a mapping", "model_attributes_type": "a mapping",
          "dict_type": "a mapping", "list_type": "a list", "int_type": "a whole number",
          "float_type": "a number", "bool_type": "true or false", "string_type": "text",
          "date_type": "a date"}


class Config(NamedTuple):
    """A settings file read: its top-level mapping, how to name the file in messages, and the
    line of every field (``field_lines``)."""

    raw: dict[str, Any]
    source: str
    lines: dict[str, int]


def read_text(path: Path, source: str | None = None) -> str:
    """A settings file's text; one not in UTF-8 is an error naming the file, the line and the
    byte, not a UnicodeDecodeError."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ConfigError(f"{source or path}: line {line}: not UTF-8 text (byte "
                          f"0x{data[exc.start]:02x}); save the file as UTF-8") from exc


def read_config(path: str | Path | None, package: str, default: str, what: str,
                empty_ok: bool = False) -> Config:
    """The file's top-level mapping, read strictly (``StrictLoader``; a key written twice
    refused). ``path`` None reads ``default`` shipped in ``package``; ``what`` says what the
    file is ("segment settings"); ``empty_ok`` reads an empty file as an empty mapping (every
    key has a default)."""
    if path is None:
        text = resources.files(package).joinpath(default).read_text(encoding="utf-8")
        source = f"<default {default}>"
    else:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"{what} not found: {p}")
        source = str(p)
        text = read_text(p, source)
    raw, lines = parse_yaml(text, source)
    if raw is None and empty_ok:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    return Config(raw, source, lines)


def parse_yaml(text: str, source: str) -> tuple[Any, dict[str, int]]:
    """A YAML document read strictly (``StrictLoader``) and the line of each of its fields
    (``field_lines``, which refuses a key written twice); a syntax error is a ConfigError at
    its line and column. An empty document is None with no lines."""
    try:
        node = yaml.compose(text, Loader=StrictLoader)
        raw = yaml.load(text, Loader=StrictLoader)  # safe: StrictLoader is a SafeLoader
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        at = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(f"{source}: {at}not valid YAML: {exc.problem or exc}") from exc
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: not valid YAML: {exc}") from exc
    return raw, (field_lines(node, source) if node is not None else {})


def read_mapping(path: str | Path | None, package: str, default: str, what: str,
                 empty_ok: bool = False) -> tuple[dict[str, Any], str]:
    """``read_config`` without the lines: the mapping and how to name the file."""
    config = read_config(path, package, default, what, empty_ok)
    return config.raw, config.source


def field_lines(node: yaml.Node, source: str, path: str = "",
                out: dict[str, int] | None = None) -> dict[str, int]:
    """The line of every field of a composed YAML document, by its path (scores.csat.low,
    channels[2]; "" the document's own). A key written twice in one mapping is refused: YAML
    would keep the last one silently."""
    out = {} if out is None else out
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for key_node, value_node in node.value:
            key, line = str(key_node.value), key_node.start_mark.line + 1
            here = f"{path}.{key}" if path else key
            if key in seen:
                raise ConfigError(f"{source}: line {line}: {here}: written twice (first at "
                                  f"line {seen[key]})")
            seen[key] = out[here] = line
            field_lines(value_node, source, here, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            field_lines(item, source, f"{path}[{i}]", out)
    return out


def reject_duplicate_keys(node: yaml.Node, source: str, path: str = "") -> None:
    """Refuse a key written twice in one mapping: YAML keeps the last one silently, so a
    second ``rules:`` block would drop every rule of the first without a word."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value)
            here = f"{path}.{key}" if path else key
            if key in seen:
                raise ConfigError(
                    f"{source}: {here}: written twice (line {key_node.start_mark.line + 1})")
            seen.add(key)
            reject_duplicate_keys(value_node, source, here)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            reject_duplicate_keys(item, source, f"{path}[{i}]")


def validated(schema: type[M], raw: dict[str, Any], source: str,
              lines: dict[str, int] | None = None) -> M:
    """``raw`` checked against a pydantic schema; its problems, all of them, become one
    ConfigError naming the file and each key, with its line when ``lines`` has it."""
    try:
        return schema.model_validate(raw)
    except ValidationError as exc:
        found = sorted((line_of(text, lines or {}), text)
                       for text in problems(exc.errors(), raw, schema))
        said = [f"line {line}: {text}" if line else text for line, text in found]
        raise ConfigError(f"{source}: {'; '.join(said)}") from exc


def line_of(text: str, lines: dict[str, int]) -> int:
    """The line of a "key.path: message" problem's key, or of the nearest enclosing one (a
    missing key: the line of the mapping that should hold it); 0 when the file has none."""
    key = text.split(": ", 1)[0]
    while key and key not in lines:
        key = key.rpartition(".")[0] if "." in key else key.rpartition("[")[0]
    return lines.get(key, 0) if key else 0


def problems(errors: Sequence[ErrorDetails], raw: Any = None,
             schema: type[BaseModel] | None = None) -> list[str]:
    """Pydantic's errors as "key.path: message" lines, in the user's terms.

    A value that fits none of a union's members gets one error per member, each under a
    schema tag (``function-after[_ordered(), Range]``, ``list[any]``) the user never wrote:
    the tags are dropped, a member's "wrong type" is left out where another member has a
    complaint about the value itself, and what remains is one line ("should be a mapping or
    a list"). ``raw`` (the validated input) tells keys from tags; ``schema`` lets an unknown
    key suggest the closest allowed one."""
    cleaned = [(_clean_loc(e, raw), e) for e in errors]
    kept = [(loc, e) for loc, e in cleaned
            if not (_is_type_error(e) and _explained(loc, e, cleaned))]
    lines: dict[Loc, list[ErrorDetails]] = {}
    for loc, error in kept:
        lines.setdefault(loc, []).append(error)
    out: list[str] = []
    for loc, errs in lines.items():
        if len(errs) > 1 and all(_is_type_error(e) for e in errs):
            wanted = dict.fromkeys(WANTED.get(e["type"], message(e)) for e in errs)
            out.append(f"{_path(loc)}: should be {' or '.join(wanted)}, "
                       f"got {errs[0].get('input')!r}")
            continue
        out += [f"{_path(loc)}: {_message_at(e, loc, schema)}" for e in errs]
    return list(dict.fromkeys(out))


def problem(error: ErrorDetails, raw: Any = None, schema: type[BaseModel] | None = None) -> str:
    """One pydantic error as "key.path: message" ("(top level)" for the whole mapping)."""
    return problems([error], raw, schema)[0]


def message(error: ErrorDetails) -> str:
    """A pydantic error's message; a validator's own words without the "Value error, " or
    "Assertion failed, " that pydantic puts before them."""
    return error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _path(loc: Loc) -> str:
    text = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc).lstrip(".")
    return text or "(top level)"


def _is_type_error(error: ErrorDetails) -> bool:
    return error["type"].endswith("_type")


def _explained(loc: Loc, error: ErrorDetails, cleaned: list[tuple[Loc, ErrorDetails]]) -> bool:
    """Another error at ``loc`` about the value itself, or one inside the value: the value
    was meant for another member of the union than the one that found its type wrong."""
    return any(other is not error and there[:len(loc)] == loc
               and (len(there) > len(loc) or not _is_type_error(other))
               for there, other in cleaned)


def _clean_loc(error: ErrorDetails, raw: Any) -> Loc:
    """The error's location without union-member tags: a part that is not a key (or index)
    of the input at that point is a tag, except a missing field's own name at the end."""
    loc, out, here = tuple(error["loc"]), [], raw
    for i, part in enumerate(loc):
        if isinstance(part, str) and "[" in part:
            continue
        if raw is not None:
            inside, here = _child(here, part)
            if not inside and not (i == len(loc) - 1 and error["type"] == "missing"):
                continue
        out.append(part)
    return tuple(out)


def _child(value: Any, part: int | str) -> tuple[bool, Any]:
    """Whether ``part`` is a key (or index) of ``value``, and what it holds (else ``value``)."""
    if isinstance(value, dict) and part in value:
        return True, value[part]
    if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
        return True, value[part]
    return False, value


def _message_at(error: ErrorDetails, loc: Loc, schema: type[BaseModel] | None) -> str:
    if error["type"] == "extra_forbidden":
        allowed = sorted({n for m in _models_at(schema, loc[:-1]) for n in m.model_fields})
        close = difflib.get_close_matches(str(loc[-1]) if loc else "", allowed, n=1)
        if close:
            return f"unknown key; did you mean {close[0]}?"
        return "unknown key" + (f"; allowed: {', '.join(allowed)}" if allowed else "")
    text = message(error)
    value = error.get("input")
    if _is_type_error(error) and not isinstance(value, dict | list):
        text += f", got {value!r}"
    return text


def _models_at(schema: type[BaseModel] | None, loc: Loc) -> list[type[BaseModel]]:
    """The models a (tag-free) location can lie in, following the schema's annotations."""
    found: list[Any] = [schema] if schema is not None else []
    for part in loc:
        step: list[Any] = []
        for tp in _members(found):
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                if isinstance(part, str) and part in tp.model_fields:
                    step.append(tp.model_fields[part].annotation)
            elif typing.get_origin(tp) in (list, tuple, set, frozenset) and isinstance(part, int):
                step += list(typing.get_args(tp))[:1]
            elif typing.get_origin(tp) is dict and isinstance(part, str):
                step += list(typing.get_args(tp))[1:2]
        found = step
    return [tp for tp in _members(found) if isinstance(tp, type) and issubclass(tp, BaseModel)]


def _members(types_: list[Any]) -> list[Any]:
    """Each type with unions and Annotated unpacked into the types they may hold."""
    out: list[Any] = []
    for tp in types_:
        origin = typing.get_origin(tp)
        if origin in (typing.Union, types.UnionType):
            out += _members(list(typing.get_args(tp)))
        elif origin is typing.Annotated:
            out += _members(list(typing.get_args(tp))[:1])
        else:
            out.append(tp)
    return out


def _timestamp(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
    """A date or time that looks like one but is not on the calendar (2025-13-01) is a YAML
    error at its line, not a ValueError from deep inside the loader."""
    try:
        return yaml.SafeLoader.construct_yaml_timestamp(loader, node)
    except ValueError as exc:
        raise yaml.constructor.ConstructorError(
            None, None, f"{node.value!r} is not a valid date or time ({exc})", node.start_mark
        ) from exc


StrictLoader.add_constructor("tag:yaml.org,2002:timestamp", _timestamp)
