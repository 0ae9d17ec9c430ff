"""`file:checksum` values: self-describing multihashes, hex-encoded, as the file extension specifies."""

from __future__ import annotations

import hashlib
from pathlib import Path

from mlmkit.errors import InvalidMetadata

# multihash code -> hashlib name (https://github.com/multiformats/multicodec)
_ALGORITHMS = {0x11: "sha1", 0x12: "sha256", 0x13: "sha512", 0x16: "sha3_256", 0x14: "sha3_512", 0xB220: "blake2b"}
_CODES = {name: code for code, name in _ALGORITHMS.items()}
_CHUNK = 1 << 20


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _read_varint(data: bytes) -> tuple[int, int]:
    value = shift = 0
    for index, byte in enumerate(data):
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index + 1
        shift += 7
    raise ValueError("truncated varint")


def _digest(path: Path, algorithm: str) -> bytes:
    hasher = hashlib.new(algorithm) if algorithm != "blake2b" else hashlib.blake2b(digest_size=32)
    with open(path, "rb") as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
    return hasher.digest()


def file_checksum(path: str | Path, algorithm: str = "sha256") -> str:
    """The multihash (hex) of a file, sha2-256 by default."""
    digest = _digest(Path(path), algorithm)
    return (_varint(_CODES[algorithm]) + _varint(len(digest)) + digest).hex()


def verify_checksum(path: str | Path, expected: str) -> None:
    """Raise unless the file's content matches the multihash `expected`."""
    try:
        raw = bytes.fromhex(expected)
        code, used = _read_varint(raw)
        length, used_len = _read_varint(raw[used:])
        algorithm = _ALGORITHMS[code]
    except (ValueError, KeyError) as exc:
        raise InvalidMetadata(f"file:checksum {expected!r} is not a supported hex multihash (expected sha2-256/512, sha1, sha3, blake2b-256)") from exc
    actual = _digest(Path(path), algorithm)
    wanted = raw[used + used_len:]
    if len(wanted) != length or actual != wanted:
        actual_hex = (_varint(code) + _varint(len(actual)) + actual).hex()
        raise InvalidMetadata(f"checksum mismatch for {path}: file:checksum says {expected}, the file hashes to {actual_hex}")
