"""First three digits of a US ZIP; ``000`` for the Safe Harbor restricted prefixes; NULL if not a ZIP.

A ZIP is ``12345``, ``12345-6789`` or ``123456789``, with optional surrounding whitespace; anything else
(``1234``, ``12345 6789``, ``ABCDE``) is not a ZIP and gives NULL. The restricted prefixes are the 17 three-digit
ZIP areas with 20,000 or fewer people (2000 Census) listed by HHS for 45 CFR 164.514(b)(2)(i)(B)
(:data:`lakehouse_phi.hipaa.RESTRICTED_PREFIXES`).
"""

from __future__ import annotations

from collections.abc import Mapping

import pyarrow as pa
import pyarrow.compute as pc

from lakehouse_phi.hipaa import RESTRICTED_PREFIXES
from lakehouse_phi.transforms.base import NoParams, Strategy

__all__ = ["RESTRICTED_PREFIXES", "Zip3"]  # RESTRICTED_PREFIXES: still imported from here by sql/generator.py
_ZIP = r"^\s*(?P<zip3>[0-9]{3})[0-9]{2}(?:-?[0-9]{4})?\s*$"


class Zip3(Strategy[NoParams]):
    name = "zip3"
    accepts = ("string",)

    @classmethod
    def output_type(cls, params: NoParams, input_type: str) -> str:
        return "string"

    def apply(self, values: pa.Array, others: Mapping[str, pa.Array] | None = None) -> pa.Array:
        if not pa.types.is_string(values.type):
            values = values.cast(pa.string())
        found = pc.struct_field(pc.extract_regex(values, pattern=_ZIP), "zip3")
        restricted = pc.is_in(found, value_set=pa.array(RESTRICTED_PREFIXES, pa.string()))
        return pc.if_else(restricted, pa.scalar("000", pa.string()), found)
