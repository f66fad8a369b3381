"""Replace each detected identifier in free text by its tag, e.g. ``[SSN]``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal  # noqa: F401

import pyarrow as pa
from pydantic import ConfigDict, Field  # noqa: F401

from lakehouse_phi.transforms.base import KeyedParams, NoParams, Params, Strategy  # noqa: F401

DETECTORS = ("ssn", "phone", "email", "mrn", "date", "url", "ip")


class ScrubTextParams(Params):
    detectors: list[Literal["ssn", "phone", "email", "mrn", "date", "url", "ip"]] = Field(default_factory=lambda: list(DETECTORS))


class ScrubText(Strategy):
    name = "scrub_text"
    Params = ScrubTextParams
    key_kind = None
    deterministic = True
    accepts = ("string",)

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        raise NotImplementedError("scrub_text: contract only; implementation pending")
