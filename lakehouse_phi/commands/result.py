"""What a command returns: :class:`CommandResult`, rendered once by :func:`lakehouse_phi.cli.main`.

``data`` is the command's JSON object (``--format json``), without ``schema_version``: :func:`with_schema_version`
puts it first when the object is printed. ``text`` is what the command says on stdout otherwise: a string, or a
callable that writes to the stream it is given (for rich tables, which size and colour themselves to the terminal).
``stderr`` holds the lines the command has for people on standard error (what it wrote, what it refused): the
dispatcher prints them before the result, so a command module never prints.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TextIO

from lakehouse_phi.errors import EXIT_OK

#: the version of every JSON object the CLI prints (``schema_version``)
SCHEMA_VERSION = 1

#: text that draws itself on a stream (rich output)
TextWriter = Callable[[TextIO], None]


@dataclass
class CommandResult:
    """One command's outcome: ``data`` for ``--format json``, ``text`` for people, and the exit code."""

    data: dict[str, Any] = field(default_factory=dict)
    text: str | TextWriter = ""
    exit_code: int = EXIT_OK
    stderr: list[str] = field(default_factory=list)

    def write_text(self, stream: TextIO) -> None:
        """``text`` on ``stream``, as is (a string carries its own line endings)."""
        if callable(self.text):
            self.text(stream)
        elif self.text:
            stream.write(self.text)

    def json_text(self) -> str:
        """``data`` as the JSON document the CLI prints: ``schema_version`` first, indented by two."""
        return json.dumps(with_schema_version(self.data), indent=2)

    def render(self, stream: TextIO, *, as_json: bool, err: TextIO | None = None) -> int:
        """Write ``stderr`` on ``err`` (default: standard error), then the result on ``stream`` in the format asked
        for; return the exit code."""
        err = sys.stderr if err is None else err
        for line in self.stderr:
            err.write(line + "\n")
        if self.stderr:
            err.flush()
        if as_json:
            stream.write(self.json_text() + "\n")
        else:
            self.write_text(stream)
        return self.exit_code


def with_schema_version(obj: Any) -> dict:
    """The object with ``schema_version`` first (a non-object is wrapped as ``result``)."""
    if not isinstance(obj, dict):
        obj = {"result": obj}
    return {"schema_version": SCHEMA_VERSION, **{k: v for k, v in obj.items() if k != "schema_version"}}


def sorted_keys(obj: Any) -> Any:
    """``obj`` with the keys of every object in it sorted, as ``json.dumps(..., sort_keys=True)`` orders them."""
    if isinstance(obj, dict):
        return {k: sorted_keys(v) for k, v in sorted(obj.items())}
    if isinstance(obj, (list, tuple)):
        return [sorted_keys(v) for v in obj]
    return obj


def lines(*items: str) -> str:
    """Lines of text as ``print`` writes them, one per item, each ending in a newline."""
    return "".join(f"{item}\n" for item in items)
