"""spark-submit entry for the bronze ingest job.

    spark-submit --master local[2] jobs/bronze_ingest.py conf/policy.yaml --table patients --input ... --bronze ...

Takes the same arguments as ``lakehouse-phi ingest`` and runs on the session spark-submit configured
(``SparkSession.builder.getOrCreate()``), so the cluster's settings are the ones the config validator checks.
"""

import os
import sys

from pyspark.sql import SparkSession

from lakehouse_phi.cli import build_parser, emit
from lakehouse_phi.commands import ingest
from lakehouse_phi.commands._common import configure_logging
from lakehouse_phi.errors import LakehousePhiError

if __name__ == "__main__":
    argv = ["ingest", *sys.argv[1:]]
    args = build_parser(argv).parse_args(argv)
    configure_logging(args.verbose - args.quiet)  # library warnings on stderr, as `lakehouse-phi ingest` does
    spark = SparkSession.builder.appName("lakehouse-phi-bronze-ingest").getOrCreate()
    try:
        code = emit(ingest.run(args, spark=spark), as_json=args.format == "json")
    except LakehousePhiError as exc:
        print(f"lakehouse-phi ingest: {exc}", file=sys.stderr)
        code = exc.exit_code
    if "DATABRICKS_RUNTIME_VERSION" not in os.environ:  # a Databricks job shares the session: never stop it
        spark.stop()
    sys.exit(code)
