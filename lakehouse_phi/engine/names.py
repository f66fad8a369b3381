"""Keyed labels for things whose *names* may carry PHI: undeclared source columns and landing file paths.

A JSON key, a stray CSV header or a file named after a patient is data, not metadata. Wherever such a name would be
shown (messages, ``details.dropped_columns``, stderr) or stored (bronze's ``_source_file``), it is replaced by a
keyed hash under the table's fingerprint key (:attr:`TableSpec.fingerprint_key_name`)::

    k_purpose = HMAC-SHA256(key, "lakehouse_phi/<purpose>/v1")          (a sub-key per purpose)
    label     = hex(HMAC-SHA256(k_purpose, UTF-8 of the name))[:n]

Column names get 8 hex characters with their 1-based position (``#3 h:1a2b3c4d``): enough to tell columns apart
and to find one again with the key (:meth:`NameHasher.column_hash` on a candidate name), too short to be a
dictionary-attack oracle for anyone without it. ``_source_file`` gets 32 hex characters (collision-free in
practice) so rows of one file can be grouped and a file found again from its path by whoever holds the key.
"""

from __future__ import annotations

from collections.abc import Sequence
from urllib.parse import unquote

import pyarrow as pa

from lakehouse_phi.transforms.hmac import HmacSha256

COLUMN_LABEL = b"lakehouse_phi/column_name/v1"
SOURCE_FILE_LABEL = b"lakehouse_phi/source_file/v1"
COLUMN_HEX = 8
SOURCE_FILE_HEX = 32


def normalize_location(uri: str) -> str:
    """One spelling of a file's location whatever the engine gives (``file:/x``, ``file:///x``, URL-encoded), so a
    file's label in a message and its rows' ``_source_file`` carry the same hash."""
    text = unquote(uri)
    if text.startswith("file:"):
        return "file:/" + text[len("file:"):].lstrip("/")
    return text


def _sub(key: bytes | None, label: bytes) -> HmacSha256 | None:
    """HMAC under the sub-key ``HMAC(key, label)``; ``None`` without a key."""
    return HmacSha256(HmacSha256(key).digests([label])[0]) if key else None  # type: ignore[arg-type]


class NameHasher:
    """Keyed hashes of names under one key (``None``: no key, labels carry the position only)."""

    def __init__(self, key: bytes | None) -> None:
        self._key = key
        self._column = _sub(key, COLUMN_LABEL)
        self._file = _sub(key, SOURCE_FILE_LABEL)

    def __repr__(self) -> str:  # never the key
        return "NameHasher(key=***)"

    def __reduce__(self):
        """Pickle as the key (the HMAC states cannot be pickled), for a filter that runs on Spark's executors."""
        return (NameHasher, (self._key,))

    def column_hash(self, name: str) -> str | None:
        if self._column is None:
            return None
        return self._column.hexdigests([name.encode("utf-8")])[0][:COLUMN_HEX]  # type: ignore[index]

    def column_label(self, name: str, position: int) -> str:
        """``#<position> h:<8 hex>`` (position 1-based, in source order)."""
        h = self.column_hash(name)
        return f"#{position}" + (f" h:{h}" if h else "")

    def column_labels(self, names: Sequence[str], source_columns: Sequence[str]) -> list[str]:
        index = {c: i + 1 for i, c in reversed(list(enumerate(source_columns)))}
        return [self.column_label(n, index.get(n, 0)) for n in names]

    def file_hash(self, path: str) -> str | None:
        """The keyed hash of a file's location (normalized, see :func:`normalize_location`)."""
        if self._file is None:
            return None
        digest = self._file.hexdigests([normalize_location(path).encode("utf-8")])[0]
        return digest[:SOURCE_FILE_HEX]  # type: ignore[index]

    def file_label(self, path: str, position: int) -> str:
        """``file #<position> (h:<32 hex>)``; position 1-based in the sorted listing."""
        h = self.file_hash(path)
        return f"file #{position}" + (f" (h:{h})" if h else "")

    def file_hashes(self, paths: pa.Array) -> pa.Array:
        """The keyed hash of every path (NULL stays NULL; no key: all NULL, never the path)."""
        if self._file is None:
            return pa.nulls(len(paths), pa.string())
        if not pa.types.is_string(paths.type):
            paths = paths.cast(pa.string())
        enc = paths.dictionary_encode()  # one path per file: hash each distinct path once
        digests = self._file.hexdigests(None if p is None else normalize_location(p).encode("utf-8")
                                        for p in enc.dictionary.to_pylist())
        hashed = pa.array([None if d is None else d[:SOURCE_FILE_HEX] for d in digests], pa.string())
        return hashed.take(enc.indices)
