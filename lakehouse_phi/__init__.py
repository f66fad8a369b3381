"""lakehouse_phi: keep protected health information safe in Spark/Databricks lakehouses.

One policy file drives bronze ingest masking (:mod:`lakehouse_phi.spark`), the Unity Catalog governance SQL
(:mod:`lakehouse_phi.sql`) and the pre-flight config validator (:mod:`lakehouse_phi.confcheck`).
Importing this package never imports PySpark.
"""

__version__ = "0.1.0"

from lakehouse_phi.errors import LakehousePhiError, PolicyError, Problem
from lakehouse_phi.policy import load_policy

__all__ = ["LakehousePhiError", "PolicyError", "Problem", "__version__", "ingest_stream", "load_policy", "mask"]

#: Spark entry points, imported on first use so that ``import lakehouse_phi`` never imports PySpark.
_LAZY = {"mask": "lakehouse_phi.spark.mask", "MaskResult": "lakehouse_phi.spark.mask",
         "ingest_stream": "lakehouse_phi.spark.stream"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lakehouse_phi' has no attribute {name!r}")
