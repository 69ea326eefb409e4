"""Dataclass records to plain JSON values and back, checked against their type hints.

The decoder builds only what the type hints name (the record classes, str, int, float, bool,
None, list, tuple, set, dict with string or int keys): whatever the input, it can create no other
object and run no code. Anything that does not fit raises DecodeError. Adding a field to a
record needs no change here.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from functools import cache
from typing import Any, Union


class DecodeError(ValueError):
    pass


def encode(value: Any) -> Any:
    """A JSON-serialisable form of ``value``: records become objects (one key per field),
    tuples and sets become lists (sets sorted, so equal values encode alike)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, (list, tuple)):
        return [encode(v) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(encode(v) for v in value)
    if isinstance(value, dict):
        return {_key(k): encode(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot encode {type(value).__name__}")


def _key(key: Any) -> str:
    """JSON object keys are strings: an int key (a position) is written in decimal."""
    if isinstance(key, int) and not isinstance(key, bool):
        return str(key)
    if not isinstance(key, str):
        raise TypeError(f"dict keys must be strings or ints, not {type(key).__name__}")
    return key


@cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def decode(tp: Any, data: Any) -> Any:
    """The value of type ``tp`` that ``encode`` turned into ``data``. ``Any`` keeps the plain
    JSON value as it is."""
    if tp is Any:
        return data
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _record(tp, data)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        for option in args:
            try:
                return decode(option, data)
            except DecodeError:
                continue
        raise DecodeError(f"{data!r:.40} is none of {tp}")
    if tp is type(None):
        return _expect(data, data is None, tp)
    if tp is bool:
        return _expect(data, type(data) is bool, tp)
    if tp is int:
        return _expect(data, type(data) is int, tp)
    if tp is float:
        return float(_expect(data, type(data) in (int, float), tp))
    if tp is str:
        return _expect(data, type(data) is str, tp)
    if origin is list:
        return [decode(args[0], v) for v in _expect(data, type(data) is list, tp)]
    if origin in (set, frozenset):
        return origin(decode(args[0], v) for v in _expect(data, type(data) is list, tp))
    if origin is tuple:
        items = _expect(data, type(data) is list, tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(decode(args[0], v) for v in items)
        if len(items) != len(args):
            raise DecodeError(f"expected {len(args)} items for {tp}")
        return tuple(decode(a, v) for a, v in zip(args, items))
    if origin is dict:
        entries = _expect(data, type(data) is dict, tp)
        return {_decode_key(args[0], k): decode(args[1], v) for k, v in entries.items()}
    raise DecodeError(f"no decoder for {tp}")


def _decode_key(tp: Any, key: str) -> Any:
    if tp is int:
        if not (key.isascii() and key.lstrip("-").isdigit()):
            raise DecodeError(f"{key!r} where an int key was expected")
        return int(key)
    return decode(tp, key)


def _expect(data: Any, ok: bool, tp: Any) -> Any:
    if not ok:
        raise DecodeError(f"{type(data).__name__} where {tp} was expected")
    return data


def _record(cls: type, data: Any) -> Any:
    if type(data) is not dict:
        raise DecodeError(f"{type(data).__name__} where a {cls.__name__} was expected")
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = set(data) - set(fields)
    if unknown:
        raise DecodeError(f"{cls.__name__} has no field {sorted(unknown)[0]!r}")
    values = {}
    for name, f in fields.items():
        if name in data:
            values[name] = decode(hints[name], data[name])
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise DecodeError(f"{cls.__name__}.{name} is missing")
    return cls(**values)
