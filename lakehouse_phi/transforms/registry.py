"""The table of ingest strategies: one module each, listed here explicitly."""

from __future__ import annotations

from typing import Any

from lakehouse_phi.transforms.age_cap import AgeCap
from lakehouse_phi.transforms.base import Strategy
from lakehouse_phi.transforms.date_shift import DateShift
from lakehouse_phi.transforms.encrypt import Encrypt
from lakehouse_phi.transforms.fpe import Fpe
from lakehouse_phi.transforms.generalize_date import GeneralizeDate
from lakehouse_phi.transforms.hmac import Hmac
from lakehouse_phi.transforms.keep import Keep
from lakehouse_phi.transforms.partial import Partial
from lakehouse_phi.transforms.redact import Redact
from lakehouse_phi.transforms.scrub_text import ScrubText
from lakehouse_phi.transforms.suppress import Suppress
from lakehouse_phi.transforms.zip3 import Zip3

STRATEGIES: dict[str, type[Strategy[Any]]] = {
    cls.name: cls
    for cls in (Keep, Suppress, Redact, Hmac, Encrypt, Fpe, GeneralizeDate, Zip3, AgeCap, DateShift, Partial,
                ScrubText)
}


def get(name: str) -> type[Strategy[Any]]:
    try:
        return STRATEGIES[name]
    except KeyError:
        raise KeyError(f"unknown strategy {name!r}; allowed: {', '.join(STRATEGIES)}") from None
