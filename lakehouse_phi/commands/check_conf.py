"""``lakehouse-phi check-conf``: the config validator on files and single settings (never imports PySpark).

Precedence is spark-submit's: ``core-site.xml`` of ``--hadoop-conf-dir`` (default ``$HADOOP_CONF_DIR`` and
``$YARN_CONF_DIR``) < ``--spark-conf`` (or the properties of ``--spark-submit``) < each cluster of
``--cluster-json`` < ``--conf``. A jobs JSON with several clusters is checked once per cluster; a cluster-policy
JSON is checked on its own. Exit 0: no ``error`` finding; 1: error findings; 2: bad usage or an unreadable file.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
from typing import TYPE_CHECKING, TextIO

from lakehouse_phi.commands._common import add_format
from lakehouse_phi.commands.result import CommandResult
from lakehouse_phi.errors import EXIT_OK, EXIT_REFUSED, UsageError

if TYPE_CHECKING:
    from lakehouse_phi.confcheck.check import Report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--spark-conf", metavar="FILE", help="a spark-defaults file (KEY VALUE or KEY=VALUE lines)")
    p.add_argument("--cluster-json", metavar="FILE", action="append", default=[],
                   help="a Databricks cluster spec, job (new_cluster, tasks[], job_clusters[]) or cluster policy "
                        "JSON; repeatable")
    p.add_argument("--conf", metavar="K=V", action="append", default=[],
                   help="one setting, as spark-submit --conf; repeatable; wins over the files")
    p.add_argument("--spark-submit", metavar="CMDLINE",
                   help="a spark-submit command line (quoted) whose --conf/-c/--properties-file/--master to read")
    p.add_argument("--hadoop-conf-dir", metavar="DIR", action="append", default=None,
                   help="a Hadoop configuration folder whose core-site.xml to read (repeatable; default: "
                        "$HADOOP_CONF_DIR and $YARN_CONF_DIR, as spark-submit would)")
    p.add_argument("--paths", metavar="URI", nargs="+", action="extend", default=[],
                   help="the job's input/output URIs; the S3A rules check the buckets of s3a://, s3://, s3n:// ones")
    add_format(p)


def run(args: argparse.Namespace) -> CommandResult:
    from lakehouse_phi.confcheck.check import check, check_cluster_policy
    from lakehouse_phi.confcheck.sources import (
        CONF_DIR_VARS,
        ClusterPolicy,
        Settings,
        parse_conf_pairs,
        parse_submit_args,
        read_cluster_json,
        read_hadoop_conf_dirs,
        read_spark_defaults,
    )

    if not (args.spark_conf or args.cluster_json or args.conf or args.spark_submit or args.hadoop_conf_dir):
        raise UsageError("nothing to check: give --spark-conf FILE, --cluster-json FILE, --conf K=V, "
                         "--spark-submit CMDLINE or --hadoop-conf-dir DIR")
    if args.spark_submit:
        base = parse_submit_args(shlex.split(args.spark_submit), spark_defaults=args.spark_conf)
    else:
        base = read_spark_defaults(args.spark_conf) if args.spark_conf else Settings()
    overrides = parse_conf_pairs(args.conf)
    folders = args.hadoop_conf_dir or [os.environ.get(k, "") for k in CONF_DIR_VARS]
    site = Settings().merged(*(read_hadoop_conf_dirs({"HADOOP_CONF_DIR": f}) for f in folders if f.strip()))
    base = site.merged(base)  # core-site.xml is the base the Spark settings override
    clusters: list[Settings] = []
    policies: list[ClusterPolicy] = []
    for path in args.cluster_json:
        loaded = read_cluster_json(path)
        if isinstance(loaded, ClusterPolicy):
            policies.append(loaded)
        else:
            clusters.extend(loaded)
    reports: list[Report] = [check(base.merged(c, overrides), args.paths) for c in clusters]
    if not clusters and (args.spark_conf or args.conf or args.spark_submit or site.site):
        reports.append(check(base.merged(overrides), args.paths))
    reports += [check_cluster_policy(p, args.paths) for p in policies]
    report = reports[0].merged(*reports[1:])
    return CommandResult(report.to_dict(), lambda stream: _print_text(report, stream),
                         EXIT_REFUSED if report.errors else EXIT_OK)


def _print_text(report: Report, stream: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = Console(file=stream, highlight=False, width=max(100, shutil.get_terminal_size((160, 24)).columns))
    console.print(Text(f"checked: {', '.join(report.sources) or '(no settings)'}"
                       + (f"; buckets: {', '.join(report.buckets)}" if report.buckets else "")))
    if report.findings:
        table = Table(show_lines=True)
        for name in ("severity", "rule", "bucket", "setting", "value", "fix"):
            table.add_column(name, overflow="fold")
        for f in report.findings:
            style = "bold red" if f.severity == "error" else "yellow"
            setting = Text(f.setting)
            if f.source:
                setting.append(f"\n{f.source}", style="dim")
            table.add_row(Text(f.severity, style=style), Text(f.rule), Text(f.bucket or ""), setting,
                          Text("(unset)" if f.value is None else f.value), Text(f.fix))
        console.print(table)
    for note in report.not_applied:
        console.print(Text(f"not applied: {note.rule}: {note.reason}", style="dim"))
    n_err, n_warn = len(report.errors), len(report.warnings)
    if n_err:
        console.print(Text(f"{n_err} error(s), {n_warn} warning(s): a job with these settings is refused",
                           style="bold red"))
    else:
        console.print(Text(f"OK: no error findings ({n_warn} warning(s))", style="green"))
