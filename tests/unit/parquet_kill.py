"""Rewrite a local Parquet table with :func:`lakehouse_phi.storage.parquet.replace_contents` and SIGKILL the process
at a chosen step (the crash-safety tests): ``python -m tests.unit.parquet_kill TABLE STEP``.

STEP: ``staged`` (the new files are written, the manifest is not), ``committed`` (the manifest is in place, nothing
applied), ``moving`` (the first new file has moved into the table), ``none`` (run to the end).
"""

from __future__ import annotations

import os
import signal
import sys

import pyarrow as pa
import pyarrow.parquet as pq

from lakehouse_phi.storage import parquet


def kill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def main(table: str, step: str) -> None:
    new = pa.table({"k": ["a", "b", "c"], "v": [10, 20, 30]})

    def write(folder: str) -> None:
        os.makedirs(folder)
        pq.write_table(new.slice(0, 2), os.path.join(folder, "part-00000-new1.parquet"))
        pq.write_table(new.slice(2), os.path.join(folder, "part-00001-new2.parquet"))
        if step == "staged":
            kill()

    if step == "committed":
        parquet._apply = lambda *_a: kill()  # type: ignore[assignment]
    elif step == "moving":
        real, calls = os.replace, []

        def replace(src, dst):
            real(src, dst)
            calls.append(dst)
            if len(calls) == 2:  # 1: the manifest (the commit), 2: the first new data file
                kill()

        os.replace = replace  # type: ignore[assignment]
    parquet.replace_contents(table, write)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
