"""Strings a regular expression matches, for testing a cluster policy's ``regex`` element against a rule: the
policy is safe only if **every** value its regex admits is secure, so the checker tries the rule's own probes
(``false``, `` false``, ``SSE-S3``…) and a sample of what the regex itself generates (each alternative, each class's
edge characters, each repeat at its minimum and a little above, case variants under ``(?i)``). A generated string
is kept only if the compiled pattern really matches it in full, so the sample never claims more than the regex
admits.
"""

from __future__ import annotations

import importlib
import re
from itertools import islice, product
from typing import Any

#: the standard library's own regex parser (``re._parser`` since Python 3.11; ``sre_parse`` before)
try:
    sre_parse: Any = importlib.import_module("re._parser")
except ImportError:  # pragma: no cover - Python < 3.11
    sre_parse = importlib.import_module("sre_parse")
MAXREPEAT = sre_parse.MAXREPEAT

#: characters tried for ".", negated classes and unknown categories
POOL = ("a", "x", "F", "f", "T", "t", "0", "9", " ", "-", "/", "_", ".")
PER_NODE = 24
TOTAL = 400
#: samples longer than this are dropped (a setting's value is short; this bounds time and memory)
MAX_LENGTH = 256


def _cap(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))[:PER_NODE]


def _class(items: list[tuple[Any, Any]]) -> list[str]:
    chars: list[str] = []
    negate = False
    members: list[tuple[Any, Any]] = []
    for op, arg in items:
        name = str(op)
        if name == "NEGATE":
            negate = True
        elif name == "LITERAL":
            chars.append(chr(arg))
        elif name == "RANGE":
            chars += [chr(arg[0]), chr(arg[1]), chr((arg[0] + arg[1]) // 2)]
        elif name == "CATEGORY":
            chars += {"CATEGORY_DIGIT": ["0", "9"], "CATEGORY_SPACE": [" ", "\t"],
                      "CATEGORY_WORD": ["a", "Z", "_", "5"]}.get(str(arg), list(POOL))
        members.append((op, arg))
    if negate:
        pattern = re.compile("[" + "".join(re.escape(c) for c in chars) + "]") if chars else None
        return [c for c in POOL if pattern is None or not pattern.fullmatch(c)][:6]
    return _cap(chars)


def _sample(parsed: Any, depth: int = 0) -> list[str]:
    """Strings the parsed sequence could produce (a sample, possibly including non-matches)."""
    if depth > 30:
        return [""]
    seqs: list[list[str]] = []
    for op, arg in parsed:
        name = str(op)
        if name == "LITERAL":
            seqs.append([chr(arg)])
        elif name == "NOT_LITERAL":
            seqs.append([c for c in POOL if c != chr(arg)][:4])
        elif name == "ANY":
            seqs.append(list(POOL))
        elif name == "IN":
            seqs.append(_class(arg))
        elif name == "BRANCH":
            seqs.append(_cap([x for alt in arg[1] for x in _sample(alt, depth + 1)]))
        elif name == "SUBPATTERN":
            seqs.append(_sample(arg[-1], depth + 1))
        elif name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, inner = arg
            top = low + 2 if high == MAXREPEAT else min(high, low + 2)
            options = _sample(inner, depth + 1)[:8]
            out: list[str] = []
            if low > MAX_LENGTH:  # a huge minimum: one long string is enough (and bounded memory)
                out = [options[0] * low] if options and len(options[0]) * low <= 16 * MAX_LENGTH else [""]
            else:
                for n in range(low, top + 1):
                    out += ["".join(combo) for combo in islice(product(options, repeat=n), 12)]
            seqs.append(_cap(out))
        elif name in ("ATOMIC_GROUP",):
            seqs.append(_sample(arg, depth + 1))
        elif name == "CATEGORY":
            seqs.append(_class([(op, arg)]))
        else:  # AT (anchors), ASSERT, ASSERT_NOT, GROUPREF...: contribute nothing; the final match filters
            seqs.append([""])
    out = [""]
    for options in seqs:
        out = list(dict.fromkeys(a + b for a, b in islice(product(out, options), TOTAL)
                                 if len(a) + len(b) <= 16 * MAX_LENGTH)) or [""]
    return out


def regex_samples(pattern: str) -> list[str]:
    """Strings ``pattern`` matches in full (a sample; empty when it cannot be parsed)."""
    try:
        compiled = re.compile(pattern)
        parsed = sre_parse.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return []
    candidates = _sample(parsed)
    if compiled.flags & re.IGNORECASE:
        candidates += [v for c in candidates for v in (c.upper(), c.lower(), c.title())]
    return [c for c in dict.fromkeys(candidates) if compiled.fullmatch(c)]
