"""Errors that users see. Every message names the place and the fix; none ever carries a data value or a key.

Exit codes (``shared/design/interfaces.md``): 0 success, 1 violations found or job refused, 2 bad usage or an
invalid policy.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input, at a place such as ``tables.patients.columns.ssn.ingest.strategy``."""

    place: str
    message: str

    def __str__(self) -> str:
        return f"{self.place}: {self.message}" if self.place else self.message


class LakehousePhiError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with."""

    exit_code = EXIT_REFUSED


class UsageError(LakehousePhiError):
    exit_code = EXIT_USAGE


class PolicyError(LakehousePhiError):
    """A policy file with one or more problems; all of them are reported together."""

    exit_code = EXIT_USAGE

    def __init__(self, problems: list[Problem], source: str = "policy") -> None:
        self.problems = sorted(set(problems))
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{source}: {n} problem{'s' if n != 1 else ''}:\n{lines}")


class KeyMaterialError(LakehousePhiError):
    """A key is missing, unreadable or malformed. The message names the key and its reference, never its value."""

    exit_code = EXIT_REFUSED


class JobRefused(LakehousePhiError):
    """The job will not run (insecure configuration, undeclared columns, unreadable source...)."""

    exit_code = EXIT_REFUSED
