"""Replacing the contents of a local Parquet table crash-safely: write, then swap by a manifest (never two renames).

A Parquet table is a folder of data files that Spark reads whole; files and folders whose names start with ``_`` or
``.`` are ignored by every reader. :func:`replace_contents` (``bronze_mode: latest`` on Parquet rewrites the table):

1. the new contents are written into ``<table>/_lhp_staging_<id>/`` (invisible to readers; the table is untouched);
2. the swap manifest ``<table>/_lhp_swap.json`` (the staged files to add, the current files to remove) is written
   to a temporary name, flushed and renamed into place: this one atomic rename is the commit;
3. the manifest is applied: the staged files move into the table (each a new, unique name), the old files are
   removed, then the staging folder and the manifest.

A process killed before step 2 leaves the old table plus a staging folder that :func:`recover` removes; killed
after it, the manifest is there and :func:`recover` finishes step 3 (applying it twice is harmless: a file already
moved or removed is skipped). :func:`recover` runs before every read, existence check and write of the table
(:mod:`lakehouse_phi.storage.tables`), so no run ever sees half a swap. Between steps 2 and 3 an outside reader
listing the folder may see old and new files together; Delta has no such window.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Callable

from lakehouse_phi.errors import JobRefused

log = logging.getLogger(__name__)

SWAP = "_lhp_swap.json"
STAGING_PREFIX = "_lhp_staging_"


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def data_files(local: str) -> list[str]:
    """The table's data files (and their checksum sidecars): every top-level file a reader would read."""
    out = []
    for name in sorted(os.listdir(local)):
        if os.path.isfile(os.path.join(local, name)) and not name.startswith(("_", "._")) and \
                not (name.startswith(".") and not name.endswith(".crc")):
            out.append(name)
    return out


def recover(local: str) -> bool:
    """Finish a swap a killed run committed, and remove staging folders no manifest names; True when a swap was
    finished. A no-op on a folder that does not exist."""
    if not os.path.isdir(local):
        return False
    manifest_path = os.path.join(local, SWAP)
    finished = False
    if os.path.exists(manifest_path):
        try:
            with open(manifest_path, encoding="utf-8") as fh:
                manifest = json.load(fh)
        except (OSError, ValueError):
            raise JobRefused(f"{local}: the swap manifest {SWAP} cannot be read; a rewrite of this Parquet table was "
                             "interrupted - inspect the folder and its staging subfolder") from None
        log.warning("finishing the interrupted rewrite of %s (its swap manifest was committed)", local)
        _apply(local, manifest)
        finished = True
    for name in os.listdir(local):
        if name.startswith(STAGING_PREFIX):
            log.info("removing the staging folder %s left by an interrupted rewrite of %s", name, local)
            shutil.rmtree(os.path.join(local, name), ignore_errors=True)
        elif name.startswith("_lhp_swap.") and name.endswith(".tmp"):  # a manifest never committed
            os.unlink(os.path.join(local, name))
    return finished


def _apply(local: str, manifest: dict) -> None:
    staging = os.path.join(local, manifest["staging"])
    for name in manifest["add"]:
        source = os.path.join(staging, name)
        if os.path.exists(source):
            os.replace(source, os.path.join(local, name))  # a new, unique name: never replaces a live file
    for name in manifest["remove"]:
        path = os.path.join(local, name)
        if os.path.exists(path):
            os.unlink(path)
    _fsync_dir(local)
    shutil.rmtree(staging, ignore_errors=True)
    os.unlink(os.path.join(local, SWAP))
    _fsync_dir(local)


def replace_contents(local: str, write: Callable[[str], None]) -> None:
    """Replace every data file of the Parquet table at ``local`` with what ``write(folder)`` writes into a new
    folder (Spark's ``df.write.parquet(folder)``), crash-safely (see the module docstring)."""
    recover(local)
    os.makedirs(local, exist_ok=True)
    name = f"{STAGING_PREFIX}{uuid.uuid4().hex}"
    staging = os.path.join(local, name)
    write(staging)
    current = set(data_files(local))
    added = data_files(staging)
    if current & set(added):  # pragma: no cover - Spark names every data file with a fresh uuid
        shutil.rmtree(staging, ignore_errors=True)
        raise JobRefused(f"{local}: the rewrite produced file names the table already has; nothing was changed")
    manifest = {"staging": name, "add": added, "remove": sorted(current)}
    tmp = os.path.join(local, f"_lhp_swap.{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest, fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, os.path.join(local, SWAP))  # the commit
    _fsync_dir(local)
    _apply(local, manifest)
