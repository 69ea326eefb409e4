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
from collections.abc import Callable
from functools import cache
from typing import Any, Union


class DecodeError(ValueError):
    pass


def encode(value: Any, defaults: bool = True) -> Any:
    """A JSON-serialisable form of ``value``: records become objects (one key per field;
    without ``defaults``, none for a field that holds its default value: decoding gives it
    back), tuples and sets become lists (sets sorted, so equal values encode alike)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        if defaults:
            return {f.name: encode(getattr(value, f.name)) for f in dataclasses.fields(value)}
        out = {}
        for name, default in _defaults(type(value)).items():
            v = getattr(value, name)
            if default is _NO_DEFAULT or type(v) is not type(default) or v != default:
                out[name] = encode(v, defaults)
        return out
    if isinstance(value, (list, tuple)):
        return [encode(v, defaults) for v in value]
    if isinstance(value, (set, frozenset)):
        return sorted(encode(v, defaults) for v in value)
    if isinstance(value, dict):
        return {_key(k): encode(v, defaults) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    raise TypeError(f"cannot encode {type(value).__name__}")


_NO_DEFAULT = object()


@cache
def _defaults(cls: type) -> dict[str, Any]:
    """Each field of the record class ``cls`` and its default value (made once: the
    factories make empty containers), or _NO_DEFAULT."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
        else:
            out[f.name] = _NO_DEFAULT
    return out


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
    return _decoder(tp)(data)


Decoder = Callable[[Any], Any]


@cache
def _decoder(tp: Any) -> Decoder:
    """The function that decodes values of type ``tp``, made once per type: the type hints
    are read once, not once per value (a cache holds thousands of records)."""
    if tp is Any:
        return _plain
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return _record(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (Union, types.UnionType):
        return _union(tp, args)
    if tp is type(None):
        return _exactly(tp, type(None))
    if tp in (bool, int, str):
        return _exactly(tp, tp)
    if tp is float:
        def number(data: Any) -> Any:
            return float(_expect(data, type(data) in (int, float), tp))
        return number
    if origin is list or origin in (set, frozenset):
        return _items(tp, origin, args[0])
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return _items(tp, tuple, args[0])
        return _fixed_tuple(tp, args)
    if origin is dict:
        return _mapping(tp, args[0], args[1])
    raise DecodeError(f"no decoder for {tp}")


def _plain(data: Any) -> Any:
    return data


def _exactly(tp: Any, kind: type) -> Decoder:
    def exactly(data: Any) -> Any:
        if type(data) is not kind:
            raise DecodeError(f"{type(data).__name__} where {tp} was expected")
        return data
    _KINDS[exactly] = kind
    return exactly


# The decoders that take a JSON value of one type as it is (str, int, bool, None), by the
# type: a record, list or dict of them checks the type in place rather than call them.
_KINDS: dict[Decoder, type] = {}


def _union(tp: Any, options: tuple) -> Decoder:
    option_decoders = [_later(option) for option in options]
    # The option a JSON value's type picks, where only one option can take it (`str | None`:
    # a str is the str, null the None), so that the others are not tried and failed.
    by_type: dict[type, Callable[[], Decoder]] = {}
    takes = [_json_types(option) for option in options]
    for kind in (str, int, float, bool, type(None), list, dict):
        able = [decoder for decoder, types_ in zip(option_decoders, takes) if types_ is None or kind in types_]
        if len(able) == 1:
            by_type[kind] = able[0]

    def union(data: Any) -> Any:
        only = by_type.get(type(data))
        if only is not None:
            return only()(data)
        for decoder in option_decoders:
            try:
                return decoder()(data)
            except DecodeError:
                continue
        raise DecodeError(f"{data!r:.40} is none of {tp}")
    return union


def _json_types(tp: Any) -> frozenset[type] | None:
    """The types of the JSON values that can decode as ``tp`` (None: any, or not known)."""
    if tp is type(None) or tp in (bool, str):
        return frozenset({tp})
    if tp is int:
        return frozenset({int})
    if tp is float:
        return frozenset({int, float})
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        return frozenset({dict})
    origin = typing.get_origin(tp)
    if origin in (list, set, frozenset, tuple):
        return frozenset({list})
    if origin is dict:
        return frozenset({dict})
    return None


def _later(tp: Any) -> Callable[[], Decoder]:
    """The decoder of ``tp``, made on first use: a record may name itself."""
    made: list[Decoder] = []

    def get() -> Decoder:
        if not made:
            made.append(_decoder(tp))
        return made[0]
    return get


def _items(tp: Any, make: type, item: Any) -> Decoder:
    item_decoder = _later(item)

    def items(data: Any) -> Any:
        decoder = item_decoder()
        _expect(data, type(data) is list, tp)
        kind = _KINDS.get(decoder)
        if kind is not None:
            for v in data:
                if type(v) is not kind:
                    decoder(v)  # raises
            out = list(data)
        else:
            out = [decoder(v) for v in data]
        return out if make is list else make(out)
    return items


def _fixed_tuple(tp: Any, args: tuple) -> Decoder:
    def fixed(data: Any) -> Any:
        items = _expect(data, type(data) is list, tp)
        if len(items) != len(args):
            raise DecodeError(f"expected {len(args)} items for {tp}")
        return tuple(_decoder(a)(v) for a, v in zip(args, items))
    return fixed


def _mapping(tp: Any, key: Any, value: Any) -> Decoder:
    value_decoder = _later(value)

    def mapping(data: Any) -> Any:
        decoder = value_decoder()
        entries = _expect(data, type(data) is dict, tp)
        if key is str:  # JSON's keys: checked, not converted
            kind = _KINDS.get(decoder)
            if kind is not None and all(type(k) is str and type(v) is kind for k, v in entries.items()):
                return dict(entries)
            return {(k if type(k) is str else _decode_key(key, k)): decoder(v) for k, v in entries.items()}
        return {_decode_key(key, k): decoder(v) for k, v in entries.items()}
    return mapping


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


def _record(cls: type) -> Decoder:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    required = {name for name, f in fields.items()
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING}
    decoders: dict[str, tuple[type | None, Decoder]] = {}

    def record(data: Any) -> Any:
        if type(data) is not dict:
            raise DecodeError(f"{type(data).__name__} where a {cls.__name__} was expected")
        if len(decoders) != len(fields):  # made on first use: a record may name itself
            hints = _hints(cls)
            for name in fields:
                made = _decoder(hints[name])
                decoders[name] = (_KINDS.get(made), made)
        values = {}
        for name, value in data.items():  # only the fields given: the others take their defaults
            known = decoders.get(name)
            if known is None:
                raise DecodeError(f"{cls.__name__} has no field {name!r}")
            kind, decoder = known
            values[name] = value if type(value) is kind else decoder(value)
        if not required <= values.keys():
            raise DecodeError(f"{cls.__name__}.{sorted(required - values.keys())[0]} is missing")
        return cls(**values)
    return record
