"""lakehouse_phi: keep protected health information safe in Spark/Databricks lakehouses.

One policy file drives bronze ingest masking (:mod:`lakehouse_phi.spark`), the Unity Catalog governance SQL
(:mod:`lakehouse_phi.sql`) and the pre-flight config validator (:mod:`lakehouse_phi.confcheck`).
Importing this package never imports PySpark.
"""

__version__ = "0.1.0"

from lakehouse_phi.errors import LakehousePhiError, PolicyError, Problem
from lakehouse_phi.policy import load_policy

__all__ = ["LakehousePhiError", "PolicyError", "Problem", "__version__", "load_policy"]
