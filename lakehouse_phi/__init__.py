"""lakehouse_phi: keep protected health information safe in Spark/Databricks lakehouses.

One policy file drives bronze ingest masking (:mod:`lakehouse_phi.spark`), the Unity Catalog governance SQL
(:mod:`lakehouse_phi.sql`) and the pre-flight config validator (:mod:`lakehouse_phi.confcheck`).
Importing this package never imports PySpark: the Spark entry points load on first use, and type checkers see them
typed (PySpark's ``DataFrame``/``SparkSession``) through the ``TYPE_CHECKING`` imports below.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from lakehouse_phi.errors import JobRefused, KeyMaterialError, LakehousePhiError, PolicyError, Problem, UsageError
from lakehouse_phi.policy import LoadedPolicy, load_policy

if TYPE_CHECKING:
    from lakehouse_phi.spark.batch import IngestResult, run_ingest
    from lakehouse_phi.spark.job import IngestOptions
    from lakehouse_phi.spark.mask import MaskResult, mask
    from lakehouse_phi.spark.stream import StreamResult, ingest_stream
    from lakehouse_phi.spark.tally import Tally

__all__ = ["IngestOptions", "IngestResult", "JobRefused", "KeyMaterialError", "LakehousePhiError", "LoadedPolicy",
           "MaskResult", "PolicyError", "Problem", "StreamResult", "Tally", "UsageError", "__version__",
           "ingest_stream", "load_policy", "mask", "run_ingest"]

#: Spark entry points, imported on first use so that ``import lakehouse_phi`` never imports PySpark.
_LAZY = {"mask": "lakehouse_phi.spark.mask", "MaskResult": "lakehouse_phi.spark.mask",
         "run_ingest": "lakehouse_phi.spark.batch", "IngestResult": "lakehouse_phi.spark.batch",
         "IngestOptions": "lakehouse_phi.spark.job", "Tally": "lakehouse_phi.spark.tally",
         "ingest_stream": "lakehouse_phi.spark.stream", "StreamResult": "lakehouse_phi.spark.stream"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lakehouse_phi' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
