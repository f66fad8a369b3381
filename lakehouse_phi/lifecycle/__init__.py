"""The key and data lifecycle on Delta bronze and quarantine tables, without Spark (delta-rs): ``rekey`` (rewrite
values under the active key versions), ``erase`` (a subject's rows) and ``purge`` (rows past ``retention_days``)."""
