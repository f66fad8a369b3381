"""The import path of the first versions: the batch job now lives in :mod:`lakehouse_phi.spark.batch`, the part it
shares with the stream in :mod:`lakehouse_phi.spark.job`. Kept so that ``from lakehouse_phi.spark.ingest import
run_ingest, IngestOptions`` (README, notebooks, user code) goes on working."""

from lakehouse_phi.policy.columns import INGESTED_AT as INGESTED_AT_COL
from lakehouse_phi.policy.columns import QUARANTINED_AT as QUARANTINED_AT_COL
from lakehouse_phi.policy.columns import RUN_ID as RUN_ID_COL
from lakehouse_phi.spark.batch import IngestResult, run_ingest
from lakehouse_phi.spark.job import IngestOptions

__all__ = ["INGESTED_AT_COL", "QUARANTINED_AT_COL", "RUN_ID_COL", "IngestOptions", "IngestResult", "run_ingest"]
