"""Where a table lives: an explicit :class:`Target` (a path, or a catalog table name, as Delta's
``forPath``/``forName``), and the ONE rule that says whether a path is on this machine's filesystem.

The rule (:func:`local_path`): a path is local when it has no URI scheme (``/data/x``, ``./x``, ``C:\\x``) or the
``file:`` scheme; every other scheme is remote, whatever its slashes (``dbfs:/mnt/x``, ``dbfs:///x``,
``s3://``, ``s3a://``, ``abfss://``, ``gs://``), and so are Unity Catalog volumes (``/Volumes/...``), which only
Databricks serves. Remote tables are never locked, listed or probed with ``os``: the engine (Spark or delta-rs)
answers for them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import urlsplit

from lakehouse_phi.errors import UsageError
from lakehouse_phi.storage import sqltext

#: ``scheme:`` at the start of a location (RFC 3986 scheme characters).
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*):")
#: Paths that look absolute but are served by Databricks only (Unity Catalog volumes).
REMOTE_PREFIXES = ("/Volumes/",)
JSONL_SUFFIXES = (".jsonl", ".json")


def scheme_of(location: str) -> str | None:
    """The URI scheme of ``location`` in lower case, or None (a Windows drive letter is not a scheme)."""
    m = _SCHEME.match(location)
    if not m or len(m.group(1)) == 1:
        return None
    return m.group(1).lower()


def local_path(location: str) -> str | None:
    """The local filesystem path of ``location``, or None when it is remote (see the module docstring)."""
    scheme = scheme_of(location)
    if scheme == "file":
        return urlsplit(location).path or "/"
    if scheme is not None:
        return None
    if location.startswith(REMOTE_PREFIXES):
        return None
    return location


def is_jsonl(location: str) -> bool:
    """A JSON-lines file (``.jsonl`` / ``.json``), as audit trails may be."""
    return str(location).lower().endswith(JSONL_SUFFIXES)


@dataclass(frozen=True)
class Target:
    """Where a table lives: ``Target.path("/data/bronze/patients")`` or ``Target.table("main.bronze.patients")``."""

    kind: Literal["path", "table"]
    location: str

    @classmethod
    def path(cls, location: str | os.PathLike) -> Target:
        text = os.fspath(location)
        if not text:
            raise UsageError("an empty path is not a table location")
        return cls("path", text)

    @classmethod
    def table(cls, name: str) -> Target:
        sqltext.table_name(name)  # validates
        return cls("table", name)

    @classmethod
    def parse(cls, text: str | os.PathLike | Target) -> Target:
        """The command-line rule, the only one: a URI (``s3://``, ``file:``, ``dbfs:``), or text starting with
        ``/``, ``.`` or ``~``, or holding a path separator, is a path; anything else must be a table name of 1-3
        plain parts."""
        if isinstance(text, Target):
            return text
        text = os.fspath(text)
        if not text:
            raise UsageError("an empty string is neither a path nor a table name")
        if _SCHEME.match(text) or text.startswith(("/", ".", "~")) or "/" in text or "\\" in text:
            return cls.path(os.path.expanduser(text))
        return cls.table(text)

    @property
    def is_path(self) -> bool:
        return self.kind == "path"

    @property
    def local(self) -> str | None:
        """The local filesystem path, or None for a remote location or a table name."""
        return local_path(self.location) if self.is_path else None

    @property
    def is_remote(self) -> bool:
        """A path that is not on this machine (an object store, DBFS, a volume)."""
        return self.is_path and self.local is None

    def sql_ref(self, table_format: str) -> str:
        return sqltext.path_ref(table_format, self.location) if self.is_path else sqltext.table_name(self.location)

    def sibling(self, suffix: str) -> Target:
        """The same kind of target with ``suffix`` appended (``<bronze>_quarantine``)."""
        return Target(self.kind, f"{self.location.rstrip('/')}{suffix}")

    def __str__(self) -> str:
        return self.location


def default_audit_target(bronze: str | Target, table_format: str) -> str:
    """Beside bronze: ``<dir>/_lakehouse_phi_audit`` (Delta) or ``.jsonl`` (parquet); ``<schema>.lakehouse_phi_audit``
    for a table name."""
    t = Target.parse(bronze)
    if t.is_path:
        loc = t.location.rstrip("/")
        parent = loc.rsplit("/", 1)[0] if "/" in loc else "."
        return f"{parent}/_lakehouse_phi_audit" + (".jsonl" if table_format != "delta" else "")
    parts = t.location.split(".")
    return ".".join(parts[:-1] + ["lakehouse_phi_audit"])
