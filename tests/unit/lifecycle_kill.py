"""Run ``lakehouse-phi ARGS`` and SIGKILL the process at a chosen point (the lifecycle kill tests):

    python -m tests.unit.lifecycle_kill POINT -- erase POLICY ...

POINT is ``event:<name>`` (right after that audit event is appended) or ``commit:<table>`` (right after the commit
to bronze or quarantine). Nothing is mocked: the real command runs until the kill.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> int:
    point, args = argv[0], argv[argv.index("--") + 1:]
    kind, _, name = point.partition(":")
    from lakehouse_phi.lifecycle import tables
    from lakehouse_phi.storage.delta import DeltaRsTable

    if kind == "event":
        real_audit = tables.Context.audit

        def audit(self, event, *a, **kw):
            sealed = real_audit(self, event, *a, **kw)
            if event == name:
                os.kill(os.getpid(), signal.SIGKILL)
            return sealed

        tables.Context.audit = audit  # type: ignore[method-assign]
    else:
        real_commit = DeltaRsTable.commit_with

        def commit_with(self, operation, commit=None):
            out = real_commit(self, operation, commit) if commit is not None else real_commit(self, operation)
            location = str(self.target).rstrip("/")
            if location.endswith("_quarantine") == (name == "quarantine"):
                os.kill(os.getpid(), signal.SIGKILL)
            return out

        DeltaRsTable.commit_with = commit_with  # type: ignore[method-assign]
    from lakehouse_phi.cli import main as cli

    return cli(args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
