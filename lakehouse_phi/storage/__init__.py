"""Storage: where tables live and how Delta is written, below ``spark/``, ``audit/``, ``lifecycle/`` and
``release/`` (it imports none of them). Importing it never imports PySpark or delta-rs.

The API, small on purpose:

Targets (:mod:`~lakehouse_phi.storage.targets`)
    ``Target.parse(text)`` / ``Target.path(p)`` / ``Target.table(name)``; ``target.local`` (the ONE local-vs-remote
    rule: no scheme or ``file:`` is local; ``dbfs:``, ``s3://``, ``s3a://``, ``abfss://``, ``gs://``, any other
    scheme and ``/Volumes/...`` are remote); ``target.is_remote``; ``default_audit_target``; ``is_jsonl``.

Engines (:mod:`~lakehouse_phi.storage.engines`)
    ``caps(spark) -> EngineCaps`` detected once per session (``connect``, ``sail``, ``databricks``,
    ``delta_sql_on_paths``, ``can_persist``, ``corrupt_record``, ``autoloader``, ``foreach_batch``,
    ``commit_info_conf``, ``default_table_format``); ``is_connect``, ``is_sail``, ``start_sail``.

Delta (:mod:`~lakehouse_phi.storage.delta`)
    ``open_delta(target, spark=None) -> DeltaRsTable | SparkDeltaTable``, both with ``exists()``, ``version()``,
    ``properties()``, ``set_properties(props, commit)``, ``read_arrow(columns, where_equals=, newest=)``,
    ``create(schema, properties, commit) -> bool``, ``merge(rows, keys, update_if_differs=, commit=) ->
    MergeMetrics(inserted, updated, skipped)`` and ``run_versions(run_id)``; ``Commit(run_id, txn=(app_id,
    version))``. delta-rs rows: a pyarrow Table, an Arrow stream, or a callable returning a fresh stream (a retried
    commit reads it again); Spark rows: a DataFrame. ``DeltaRsTable`` adds ``delete``, ``count``, ``stream(sql)``,
    ``txn_version``, ``history``.

Rules (:mod:`~lakehouse_phi.storage.rules`)
    ``is_not_found(exc)``, ``is_conflict(exc)`` and ``RETRY`` (a :class:`RetryPolicy`: only conflicts are retried;
    anything else surfaces at once as itself; all attempts lost -> ``ConcurrentWriters``); ``spark_error_class``.

Tables (:mod:`~lakehouse_phi.storage.tables`)
    ``exists(spark, target, fmt)``, ``read``, ``append``, ``set_table_properties``, ``path_lock(target)`` (local
    paths only), ``default_table_format(spark)``, ``delta_writable``, ``native_delta_sql``, ``uses_deltars``.

Also ``sqltext`` (every identifier/literal put into runtime SQL) and ``keycheck.recorded_key_checks``.
"""

from lakehouse_phi.storage.delta import Commit, DeltaRsTable, MergeMetrics, SparkDeltaTable, open_delta, uses_deltars
from lakehouse_phi.storage.engines import EngineCaps, caps, is_connect, is_sail
from lakehouse_phi.storage.rules import RETRY, ConcurrentWriters, RetryPolicy, is_conflict, is_not_found
from lakehouse_phi.storage.targets import Target, default_audit_target, is_jsonl

__all__ = ["RETRY", "Commit", "ConcurrentWriters", "DeltaRsTable", "EngineCaps", "MergeMetrics", "RetryPolicy",
           "SparkDeltaTable", "Target", "caps", "default_audit_target", "is_conflict", "is_connect", "is_jsonl",
           "is_not_found", "is_sail", "open_delta", "uses_deltars"]
