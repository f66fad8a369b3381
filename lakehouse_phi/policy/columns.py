"""Every bookkeeping column the package adds to, or carries through, bronze and quarantine rows: named once here.

The loader refuses these names (and the package's internal prefixes) as user column or derive names; the Arrow
engine, the mask binding, the writers, the governance SQL and the lifecycle commands import them from here. This
module sits at the bottom of the package (it imports nothing) so that every layer can read it.

Written to bronze: :data:`SOURCE_FILE`, :data:`FINGERPRINT`, :data:`RUN_ID`, :data:`INGESTED_AT`,
:data:`KEY_VERSIONS`. Written to quarantine: the same with :data:`ERRORS` and :data:`QUARANTINED_AT` instead of
:data:`INGESTED_AT`. Never written: :data:`SCAN_HITS` (tallied, then dropped), :data:`CORRUPT` (the reader's parse
failure marker), :data:`ORDER_FILE` / :data:`ORDER_POS` (``bronze_mode: latest`` ordering only).
"""

from __future__ import annotations

#: Per row, ``{column, rule, message}`` for every failed check (empty for a bronze row); never a value.
ERRORS = "_phi_errors"
#: The landing file of the row (its path, or a keyed hash of it; see ``source_file`` in the policy).
SOURCE_FILE = "_source_file"
#: Keyed HMAC-SHA256 (hex) over the canonical encoding of a row's raw declared values.
FINGERPRINT = "_row_fingerprint"
#: The run that wrote the row.
RUN_ID = "_ingest_run_id"
#: When the row was written to bronze.
INGESTED_AT = "_ingested_at"
#: When the row was written to quarantine.
QUARANTINED_AT = "_quarantined_at"
#: Output column -> key version, for every keyed output and the fingerprint.
KEY_VERSIONS = "_key_versions"
#: Per row, ``column:detector`` for every PHI-looking value in a non-PHI column (tallied, then dropped).
SCAN_HITS = "_phi_scan_hits"
#: The raw line of a row that did not parse (Spark's ``columnNameOfCorruptRecord``); never written anywhere.
CORRUPT = "_corrupt_record"
#: ``bronze_mode: latest``: the raw source file and row position, only to order versions of one key.
ORDER_FILE = "_lhp_order_file"
ORDER_POS = "_lhp_order_pos"

#: Prefixes of the package's own column and view names (ordering columns, ranks, staging); refused as user names.
RESERVED_PREFIXES = ("_lhp_", "__lhp_")

#: Every bookkeeping column, in a stable order.
RESERVED = (ERRORS, SOURCE_FILE, RUN_ID, INGESTED_AT, QUARANTINED_AT, FINGERPRINT, KEY_VERSIONS, SCAN_HITS,
            CORRUPT, ORDER_FILE, ORDER_POS)

#: Columns the mask pass carries that neither bronze nor quarantine receives.
HIDDEN = (SCAN_HITS, ORDER_FILE, ORDER_POS)


def is_reserved(name: str) -> bool:
    """True for a bookkeeping column name or a name under one of the package's prefixes."""
    return name in RESERVED or name.startswith(RESERVED_PREFIXES)
