"""Reading Python source without losing a byte of it.

A :class:`SourceFile` remembers everything needed to write the file back exactly as it was
apart from the fix: its encoding (BOM, PEP 263 coding cookie), its line endings and its
permission bits. libcst itself keeps line endings and indentation; what it cannot know is how
the bytes were encoded, so decoding and encoding live here.
"""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import stat
import tokenize
from dataclasses import dataclass


class SourceError(Exception):
    """The file cannot be read or decoded. ``line``/``col`` point at the problem if known."""

    def __init__(self, message: str, line: int = 1, col: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.line = line
        self.col = col


@dataclass(frozen=True)
class SourceFile:
    path: str
    raw: bytes
    text: str
    encoding: str
    bom: bool
    mode: int | None

    @property
    def digest(self) -> str:
        return digest(self.raw)

    def encode(self, text: str) -> bytes:
        """Encode ``text`` the way this file was encoded (BOM included)."""
        data = text.encode(self.encoding)
        if self.bom:
            data = codecs.BOM_UTF8 + data
        return data


def digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def decode(raw: bytes) -> tuple[str, str, bool]:
    """Return ``(text, encoding, bom)`` for Python source bytes.

    Honours a UTF-8 BOM and a PEP 263 coding cookie; the default is UTF-8. Newlines are left
    untouched (no universal-newline translation), so CRLF files round-trip.
    """
    try:
        encoding, _ = tokenize.detect_encoding(io.BytesIO(raw).readline)
    except SyntaxError as exc:  # unknown cookie, or BOM and cookie disagree
        raise SourceError(f"cannot decode: {exc}") from None
    bom = raw.startswith(codecs.BOM_UTF8)
    body = raw[len(codecs.BOM_UTF8):] if bom else raw
    if encoding == "utf-8-sig":
        encoding = "utf-8"
    try:
        text = body.decode(encoding)
    except UnicodeDecodeError as exc:
        line = body[: exc.start].count(b"\n") + 1
        col = exc.start - (body.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SourceError(
            f"cannot decode as {encoding}: invalid byte 0x{body[exc.start]:02x}", line, col
        ) from None
    except LookupError:
        raise SourceError(f"unknown encoding {encoding!r}") from None
    return text, encoding, bom


def read_source(path: str) -> SourceFile:
    try:
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            raw = fh.read()
    except OSError as exc:
        raise SourceError(f"cannot read: {exc.strerror or exc}") from None
    return from_bytes(path, raw, stat.S_IMODE(st.st_mode))


def from_bytes(path: str, raw: bytes, mode: int | None = None) -> SourceFile:
    text, encoding, bom = decode(raw)
    return SourceFile(path=path, raw=raw, text=text, encoding=encoding, bom=bom, mode=mode)
