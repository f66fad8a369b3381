"""The README's fenced code blocks, for the tests that run them."""

from __future__ import annotations

import re

from tests.helpers import ROOT

README = ROOT / "README.md"
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def blocks(lang: str, section: str | None = None) -> list[str]:
    """The ``lang`` blocks of the README, or of one ``## section`` of it."""
    text = README.read_text(encoding="utf-8")
    if section is not None:
        start = text.index(f"## {section}\n")
        end = text.find("\n## ", start + 1)
        text = text[start:end if end != -1 else None]
    return [body for kind, body in _FENCE.findall(text) if kind == lang]


def commands(block: str) -> list[str]:
    """The shell commands of a block, with backslash continuations joined."""
    return [c.strip() for c in block.replace("\\\n", " ").splitlines() if c.strip() and not c.startswith("#")]
