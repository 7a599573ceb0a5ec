"""Typed configuration: dataclasses filled from YAML and `a.b.c=value` overrides.

Each component owns the dataclass of its knobs (learner/config.py, executors/config.py,
...); cluster/config.py composes them.  This module is the one generic piece: it turns
plain data into those dataclasses and refuses anything it cannot check, so that a typo
in a 6-hour cluster job fails in the first second, naming the key and what is allowed.

Supported field types: bool, int, float, str, Literal[...], X | None, list[X],
nested dataclasses.  Ranges come from `field(metadata={"min": a, "max": b})`, with
`"exclusive_min": True` for strict lower bounds.  A field with `metadata=follows(k)`
is not a key of its own: it is set from key `k` (one dtype for rollout and learner),
refused in YAML and overrides, and left out of `to_dict`.

Every config dataclass derives from `ConfigSection`.  With EXECRL_CONFIG_READS=FILE in
the environment when a process starts, each field that code reads is appended to FILE
(`Class.field`): a test runs a real job that way to find keys that no code reads.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

T = TypeVar("T")


READS_ENV = "EXECRL_CONFIG_READS"
# Frames that read every field without using it: dataclass machinery (asdict, replace,
# the generated __eq__/__repr__, compiled from strings) and this module.
_BOOKKEEPING = (dataclasses.__file__, __file__, "<string>")


class ConfigSection:
    """Base of the config dataclasses; records field reads when READS_ENV is set."""

    if os.environ.get(READS_ENV):
        def __getattribute__(self, name: str):
            value = object.__getattribute__(self, name)
            if name in _field_names(type(self)) and sys._getframe(1).f_code.co_filename not in _BOOKKEEPING:
                _record_read(f"{type(self).__name__}.{name}")
            return value


_seen_reads: set[str] = set()
_field_name_cache: dict[type, frozenset] = {}


def _field_names(cls: type) -> frozenset:
    names = _field_name_cache.get(cls)
    if names is None:
        names = _field_name_cache[cls] = frozenset(f.name for f in dataclasses.fields(cls))
    return names


def _record_read(key: str) -> None:
    if key in _seen_reads:
        return
    _seen_reads.add(key)
    with open(os.environ[READS_ENV], "a", encoding="utf-8") as f:
        f.write(key + "\n")


def follows(key: str) -> dict[str, Any]:
    """Field metadata: this field is set from config key `key`, never by itself."""
    return {"follows": key}


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names the key and what is allowed."""


def from_dict(cls: type[T], data: Any, where: str = "") -> T:
    """Build dataclass `cls` from `data`, checking every key and value."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'config'}: expected a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        key = _join(where, str(unknown[0]))
        allowed = sorted(name for name, f in fields.items() if "follows" not in f.metadata)
        raise ConfigError(f"unknown config key {key!r}; allowed keys here: {', '.join(allowed)}")
    derived = sorted(name for name in data if "follows" in fields[name].metadata)
    if derived:
        source = fields[derived[0]].metadata["follows"]
        raise ConfigError(f"{_join(where, derived[0])} is not set on its own: it follows {source}; set {source}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, value in data.items():
        f = fields[name]
        values[name] = _coerce(hints[name], value, _join(where, name), f.metadata)
    return cls(**values)


def to_dict(obj: Any) -> dict[str, Any]:
    """Plain-data form of a config (for YAML dumps, W&B and checkpoints): its keys, so
    the result loads back; fields that follow another key are left out."""
    out = {}
    for f in dataclasses.fields(obj):
        if "follows" in f.metadata:
            continue
        value = getattr(obj, f.name)
        out[f.name] = to_dict(value) if dataclasses.is_dataclass(value) else _plain(value)
    return out


def _plain(value: Any) -> Any:
    return [_plain(v) for v in value] if isinstance(value, (list, tuple)) else value


def load_yaml(cls: type[T], path: str | Path | None, overrides: list[str] = ()) -> T:
    """Load `path` (or the dataclass defaults when None), then apply dotted overrides."""
    data: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {str(p)!r} does not exist")
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {str(p)!r} is not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise ConfigError(f"config file {str(p)!r} must hold a mapping at the top level")
    for item in overrides:
        _apply_override(data, item)
    return from_dict(cls, data)


def _apply_override(data: dict[str, Any], item: str) -> None:
    """`learner.lr=1e-5` -> data["learner"]["lr"] = 1e-5 (value parsed as YAML)."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r} must look like section.key=value")
    parts = key.strip().split(".")
    node = data
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override {item!r}: {part!r} is not a section")
        node = child
    try:
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError:
        node[parts[-1]] = raw


def _join(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _coerce(tp: Any, value: Any, key: str, meta: Any) -> Any:
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value is None:
            return None
        return _coerce(args[0], value, key, meta)
    if origin is Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{key}: {value!r} is not allowed; choose one of {', '.join(map(repr, allowed))}")
        return value
    if origin is list:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        (item_tp,) = typing.get_args(tp)
        return [_coerce(item_tp, v, f"{key}[{i}]", {}) for i, v in enumerate(value)]
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, key)
    return _check_range(_scalar(tp, value, key), key, meta)


def _scalar(tp: Any, value: Any, key: str) -> Any:
    if tp is bool:
        if isinstance(value, bool):
            return value
    elif tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):  # YAML 1.1 reads "1e-5" as a string
            try:
                return float(value)
            except ValueError:
                pass
    elif tp is str:
        if isinstance(value, str):
            return value
    elif tp is Any:
        return value
    raise ConfigError(f"{key}: expected {getattr(tp, '__name__', tp)}, got {value!r}")


def _check_range(value: Any, key: str, meta: Any) -> Any:
    lo, hi = meta.get("min"), meta.get("max")
    if lo is not None and (value < lo or (meta.get("exclusive_min") and value == lo)):
        op = ">" if meta.get("exclusive_min") else ">="
        raise ConfigError(f"{key}: {value!r} is out of range; must be {op} {lo}" + (f" and <= {hi}" if hi is not None else ""))
    if hi is not None and value > hi:
        raise ConfigError(f"{key}: {value!r} is out of range; must be <= {hi}")
    return value


def rng(lo: float | None = None, hi: float | None = None, *, exclusive_min: bool = False) -> dict[str, Any]:
    """Field metadata for a numeric range: `x: float = field(default=1.0, metadata=rng(0, 1))`."""
    return {"min": lo, "max": hi, "exclusive_min": exclusive_min}
