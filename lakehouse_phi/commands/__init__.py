"""The commands of ``lakehouse-phi``: one module per command, the top layer of the package.

Each module has ``add_arguments(parser)`` and ``run(args) -> CommandResult`` (:mod:`lakehouse_phi.commands.result`):
what the command has to say on stdout, as ``data`` (the JSON object of ``--format json``) and as ``text`` (what a
person reads), with its exit code. :func:`lakehouse_phi.cli.main` renders the result once, in the format asked for;
progress and diagnostics go to stderr as the command runs. Heavy imports (PySpark, sqlglot, rich) happen inside
``run``, so that listing the commands (``--help``) and the Spark-free commands stay fast.

Nothing else in the package imports this one (import-linter's ``commands-on-top`` contract).
"""
