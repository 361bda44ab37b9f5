"""Zip-bomb guard for .docx and .xlsx: count what each member really inflates to.

The sizes in a zip's headers are claims: a member declared as 10 KB can inflate to gigabytes.
``check_inflation`` inflates every member itself, in bounded pieces, from the raw compressed bytes
(not through ``zipfile``'s reader, which trusts the declared size), and stops as soon as the real
total passes the limit. Memory stays at one piece; time is at most the limit's worth of inflating.
"""

from __future__ import annotations

import struct
import time
import zipfile
import zlib
from typing import BinaryIO

_PIECE = 1 << 16  # compressed bytes fed per step
_OUT = 1 << 20  # at most this much inflated output held at once
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
_LOCAL_MAGIC = b"PK\x03\x04"


class ZipBomb(Exception):
    """The archive inflates past a limit, or cannot be inflated safely; str() is the reason."""


def check_inflation(
    handle: BinaryIO, *, max_bytes: int, what: str, max_ratio: float | None = None,
    ratio_min_bytes: int = 0, deadline: float | None = None,
) -> int:
    """Inflate every member of the zip in ``handle``; returns the real total. Raises ``ZipBomb``
    past ``max_bytes`` (or past ``max_ratio`` x the archive size once over ``ratio_min_bytes``),
    and ``zipfile.BadZipFile`` for an archive that is not a zip. ``deadline``: time.monotonic()."""
    with zipfile.ZipFile(handle) as archive:
        infos = archive.infolist()
    total, packed = 0, 0
    for info in infos:
        packed += info.compress_size
        total += _inflate_member(handle, info, max_bytes - total, what, deadline)
        if total > max_bytes:
            raise ZipBomb(f"zip bomb guard: {what} would unpack to more than {max_bytes / 2**20:.0f} MB")
    if max_ratio is not None and total > ratio_min_bytes and total > max_ratio * max(packed, 1):
        raise ZipBomb(f"zip bomb guard: {what} compression ratio over {max_ratio:g}")
    return total


def _inflate_member(handle: BinaryIO, info: zipfile.ZipInfo, budget: int, what: str, deadline) -> int:
    """Real inflated size of one member, counting at most ``budget + 1`` bytes."""
    handle.seek(info.header_offset)
    header = handle.read(_LOCAL_HEADER.size)
    if len(header) != _LOCAL_HEADER.size or header[:4] != _LOCAL_MAGIC:
        raise zipfile.BadZipFile(f"bad local header for {info.filename!r}")
    name_len, extra_len = _LOCAL_HEADER.unpack(header)[9:11]
    handle.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
    if info.compress_type == zipfile.ZIP_STORED:
        return info.compress_size  # stored: no inflation, the bytes are in the file
    if info.compress_type != zipfile.ZIP_DEFLATED:
        raise ZipBomb(f"{what} member {info.filename!r} uses an unsupported compression method")
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    left, out = info.compress_size, 0
    while left > 0 and not inflater.eof:
        piece = handle.read(min(_PIECE, left))
        if not piece:
            break
        left -= len(piece)
        data = piece
        while data and out <= budget:  # max_length bounds every step's output
            out += len(inflater.decompress(data, _OUT))
            data = inflater.unconsumed_tail
        if out > budget:
            return out
        if deadline is not None and time.monotonic() > deadline:
            raise ZipBomb(f"zip bomb guard: {what} took too long to inflate")
    return out
