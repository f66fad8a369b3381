"""HIPAA Safe Harbor constants (45 CFR 164.514(b)(2)) shared by the ingest strategies and the governance SQL.

They are facts of the regulation, not of one side: :mod:`lakehouse_phi.transforms` and :mod:`lakehouse_phi.sql`
both import them from here.
"""

from __future__ import annotations

#: The 17 three-digit ZIP areas with 20,000 or fewer people (2000 Census) listed by HHS for
#: 164.514(b)(2)(i)(B): their first three digits must be replaced by ``000``.
RESTRICTED_PREFIXES: tuple[str, ...] = ("036", "059", "063", "102", "203", "556", "692", "790", "821", "823", "830",
                                        "831", "878", "879", "884", "890", "893")

#: Ages over 89 are aggregated into a single category of 90 or older (164.514(b)(2)(i)(C)).
AGE_CAP = 90
