"""Regular expressions that find identifiers in free text, shared by ``scrub_text`` and the ingest PHI scan.

Every pattern is written in the common subset of RE2 (what ``pyarrow.compute`` runs) and Python's ``re``, so the
vectorized strategy and the Python-side evaluation (``benchmarks/scrub_eval.py``) run the same expressions.

:data:`ORDER` is the order in which ``scrub_text`` applies them: each detector runs on the output of the previous
one, so the ones that swallow digits of other kinds go first (a URL or an e-mail address may hold digits and dates;
an IPv4 address looks like a dotted phone number; a 9-digit SSN must be claimed before the phone patterns look).
"""

from __future__ import annotations

import re
from functools import cache

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_DAY = r"(?:0?[1-9]|[12][0-9]|3[01])"
_YEAR = r"(?:19|20)[0-9]{2}"

#: Detector name -> pattern (RE2 and Python ``re`` compatible).
PATTERNS: dict[str, str] = {
    # scheme or www., or a bare host with a common TLD followed by a path; not ending in sentence punctuation
    "url": (r"(?:\b(?:[Hh][Tt][Tt][Pp][Ss]?://|[Ww][Ww][Ww]\.)|\b[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
            r"\.(?:com|org|net|edu|gov|io|us)/)[^\s<>\"']*[^\s<>\"'.,;:!?)\]]"),
    "email": r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b",
    "ip": rf"\b{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}\b",
    # 3-2-4 with dashes or spaces, or 9 digits standing alone (not part of a longer number or word)
    "ssn": r"\b[0-9]{3}-[0-9]{2}-[0-9]{4}\b|\b[0-9]{3} [0-9]{2} [0-9]{4}\b|\b[0-9]{9}\b",
    # NANP: optional +1 / 1-, area code bare or in parentheses, separators space/dot/dash, optional extension
    "phone": (r"(?:\+1[\s.-]?|\b1[\s.-])?(?:\([0-9]{3}\)\s?|\b[0-9]{3}[\s.-])[0-9]{3}[\s.-][0-9]{4}\b"
              r"(?:,?\s?(?:x|ext\.?|extension)\s?[0-9]{1,5}\b)?"),
    "mrn": r"\b(?i:MRN)[:#]?\s?[0-9]{7}\b",
    "date": (rf"\b(?:0?[1-9]|1[0-2])/{_DAY}/(?:{_YEAR}|[0-9]{{2}})\b"
             rf"|\b(?:0?[1-9]|1[0-2])-{_DAY}-(?:{_YEAR}|[0-9]{{2}})\b"
             rf"|\b(?:0?[1-9]|1[0-2])\.{_DAY}\.{_YEAR}\b"
             rf"|\b{_YEAR}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])\b"
             rf"|\b(?i:{_MONTH})\.?\s+{_DAY}(?:st|nd|rd|th)?,?\s+{_YEAR}\b"
             rf"|\b{_DAY}\s+(?i:{_MONTH})\.?,?\s+{_YEAR}\b"
             rf"|\b(?i:{_MONTH})\.?\s+{_DAY}(?:st|nd|rd|th)?\b"),  # month and day without a year
}

#: Order of application in ``scrub_text``.
ORDER: tuple[str, ...] = ("url", "email", "ip", "ssn", "phone", "mrn", "date")

#: Detector name -> replacement tag.
TAGS: dict[str, str] = {name: f"[{name.upper()}]" for name in ORDER}

#: Whole-value forms for scanning columns that are not declared PHI (anchored; a cell that *is* an identifier).
VALUE_PATTERNS: dict[str, str] = {
    "ssn": r"^\s*[0-9]{3}-?[0-9]{2}-?[0-9]{4}\s*$",
    "email": rf"^\s*{PATTERNS['email']}\s*$",
    "phone": rf"^\s*{PATTERNS['phone']}\s*$",
}


@cache
def compiled(name: str) -> re.Pattern[str]:
    """The Python ``re`` form of detector ``name`` (for evaluation and for per-value checks in tests)."""
    return re.compile(PATTERNS[name])
