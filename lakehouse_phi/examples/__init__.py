"""The worked example policy, shipped with the package (``conf/policy.yaml`` in the repository links here), so the
demo and ``lakehouse-phi compile`` work from any folder and from an installed wheel."""

from __future__ import annotations

from pathlib import Path

#: The worked example: patients (CSV), encounters with notes (JSON lines), claims (Parquet), and governance.
EXAMPLE_POLICY = Path(__file__).with_name("policy.yaml")
