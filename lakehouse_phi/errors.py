"""Errors that users see. Every message names the place and the fix; none ever carries a data value or a key.

Exit codes (``shared/design/interfaces.md``): 0 success, 1 violations found or job refused, 2 bad usage or an
invalid policy. Each error class also has a stable ``code`` (the ``error.code`` of the JSON error envelope) and an
optional ``place`` (where in the policy or the command line the problem is).

:func:`translate` turns the exceptions that escape from libraries (a missing optional package, a missing file,
an unreachable service, a Spark error) into one of these, so that the CLI prints one message with its fix instead
of a traceback. It reads class names only and imports nothing: no PySpark, boto3 or databricks-sdk is needed to
recognise their exceptions.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_USAGE = 2


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with an input, at a place such as ``tables.patients.columns.ssn.ingest.strategy``."""

    place: str
    message: str

    def __str__(self) -> str:
        return f"{self.place}: {self.message}" if self.place else self.message


class LakehousePhiError(Exception):
    """Base class. ``exit_code`` is what the CLI exits with; ``code`` names the kind of failure in JSON."""

    exit_code = EXIT_REFUSED
    code = "error"

    def __init__(self, message: str = "", *, place: str = "") -> None:
        super().__init__(message)
        self.place = place


class UsageError(LakehousePhiError):
    exit_code = EXIT_USAGE
    code = "usage"


class PolicyError(LakehousePhiError):
    """A policy file with one or more problems; all of them are reported together."""

    exit_code = EXIT_USAGE
    code = "invalid_policy"

    def __init__(self, problems: list[Problem], source: str = "policy") -> None:
        self.problems = sorted(set(problems))
        self.source = source
        lines = "\n".join(f"  - {p}" for p in self.problems)
        n = len(self.problems)
        super().__init__(f"{source}: {n} problem{'s' if n != 1 else ''}:\n{lines}",
                         place=self.problems[0].place if self.problems else "")


class KeyMaterialError(LakehousePhiError):
    """A key is missing, unreadable or malformed. The message names the key and its reference, never its value."""

    exit_code = EXIT_REFUSED
    code = "key"


class JobRefused(LakehousePhiError):
    """The job will not run (insecure configuration, undeclared columns, unreadable source...)."""

    exit_code = EXIT_REFUSED
    code = "refused"


class MissingDependency(UsageError):
    """An optional package this command needs is not installed; the message says which extra to install."""

    code = "missing_dependency"


class NotFound(UsageError):
    """A file, folder or table named on the command line or in the policy does not exist."""

    code = "not_found"


class EngineError(UsageError):
    """The engine cannot do what was asked (Delta on a Spark without Delta, no Java for local Spark...)."""

    code = "engine"


class Unreachable(LakehousePhiError):
    """A service (KMS, a secret store, a SQL warehouse, a Spark Connect server) did not answer."""

    code = "unreachable"


class ExternalFailure(LakehousePhiError):
    """A library (Spark, a cloud SDK) failed; only its error class is shown, since its message may quote data."""

    code = "external"


#: top-level module of an optional package -> (pip name, extra)
OPTIONAL_PACKAGES: dict[str, tuple[str, str]] = {
    "pyspark": ("pyspark", "spark"),
    "py4j": ("pyspark", "spark"),
    "delta": ("delta-spark", "spark"),
    "pysail": ("pysail", "local"),
    "deltalake": ("deltalake", "local"),
    "boto3": ("boto3", "aws"),
    "botocore": ("boto3", "aws"),
    "databricks": ("databricks-sdk", "databricks"),
}


def missing_dependency(module: str) -> MissingDependency | None:
    """The error for an ``ImportError`` of ``module``, or None when it is no optional package of ours."""
    top = module.split(".")[0]
    if top not in OPTIONAL_PACKAGES:
        return None
    package, extra = OPTIONAL_PACKAGES[top]
    return MissingDependency(f"this needs {package}, which is not installed: pip install 'lakehouse-phi[{extra}]'",
                             place=module)


def _class_names(exc: BaseException) -> set[str]:
    return {f"{c.__module__}.{c.__qualname__}" for c in type(exc).__mro__}


def _spark_condition(exc: BaseException) -> str | None:
    """The error class of a PySpark exception (``PATH_NOT_FOUND``...), without touching its message."""
    for attr in ("getCondition", "getErrorClass"):
        get = getattr(exc, attr, None)
        if callable(get):
            try:
                value = get()
            except Exception:  # noqa: BLE001 - a getter that fails tells us nothing
                value = None
            if value:
                return str(value)
    return None


_UNREACHABLE = {
    "builtins.ConnectionError", "builtins.TimeoutError", "socket.timeout", "socket.gaierror",
    "botocore.exceptions.EndpointConnectionError", "botocore.exceptions.ConnectTimeoutError",
    "botocore.exceptions.ReadTimeoutError", "botocore.exceptions.NoCredentialsError",
    "requests.exceptions.ConnectionError", "requests.exceptions.Timeout",
    "urllib3.exceptions.NewConnectionError", "urllib3.exceptions.MaxRetryError",
}


def translate(exc: BaseException) -> LakehousePhiError | None:
    """Our error for an exception raised below the CLI, or None for an unexpected one (a bug).

    Messages of foreign exceptions are only kept where they cannot quote a data value (a file name, an endpoint
    URL); a Spark error shows its error class only.
    """
    if isinstance(exc, LakehousePhiError):
        return exc
    names = _class_names(exc)
    if isinstance(exc, ImportError) and exc.name:
        found = missing_dependency(exc.name)
        if found is not None:
            return found
    if isinstance(exc, (FileNotFoundError, NotADirectoryError)) and exc.filename is not None:
        return NotFound(f"no such file or folder: {exc.filename}; check the path (an output's parent must be a "
                        "folder)", place=str(exc.filename))
    if isinstance(exc, PermissionError) and exc.filename is not None:
        return UsageError(f"permission denied: {exc.filename}; check that this user may read (or write) it",
                          place=str(exc.filename))
    if any(n.startswith("databricks.sdk.errors.") for n in names):
        return Unreachable(f"the Databricks workspace refused or did not answer ({type(exc).__name__}): "
                           f"{str(exc)[:300]}; check DATABRICKS_HOST, the credentials (DATABRICKS_TOKEN or a config "
                           "profile) and the warehouse id")
    if names & _UNREACHABLE:
        detail = f": {str(exc)[:300]}" if "botocore" in type(exc).__module__ else ""
        return Unreachable(f"a service did not answer ({type(exc).__name__}){detail}; check the endpoint, the "
                           "network and the credentials (for AWS: AWS_REGION, AWS_ENDPOINT_URL_*, the IAM role)")
    if any(n.startswith(("pyspark.errors.", "py4j.protocol.")) for n in names):
        return _spark_error(exc)
    return None


def delta_unavailable(detail: str = "") -> EngineError:
    """Delta was asked for on an engine that has none (classic Spark without delta-spark configured)."""
    return EngineError(f"this engine has no Delta{detail}; use --engine sail (pip install 'lakehouse-phi[local]'), "
                       "a Spark with delta-spark configured (spark.sql.extensions), or Databricks; or pass "
                       "--table-format parquet", place="--table-format")


def _spark_error(exc: BaseException) -> LakehousePhiError:
    found = _spark_condition(exc)
    if found is None and type(exc).__name__ == "SparkConnectGrpcException":  # no answer, so no error class
        return Unreachable("the Spark Connect server did not answer; check the sc://host:port URL and that the server "
                           "is running")
    cond = found or type(exc).__name__
    if cond.startswith("PATH_NOT_FOUND"):
        return NotFound("a path the job reads does not exist (Spark: PATH_NOT_FOUND); check --input, or the "
                        "table's source.path in the policy")
    if cond.startswith("DATA_SOURCE_NOT_FOUND"):
        return delta_unavailable(f" (Spark: {cond})")
    if cond.startswith("JAVA_GATEWAY_EXITED"):
        return EngineError("local Spark could not start its JVM (Spark: JAVA_GATEWAY_EXITED); install Java 17 and "
                           "set JAVA_HOME, or use --engine sail (pip install 'lakehouse-phi[local]')")
    return ExternalFailure(f"Spark failed (Spark: {cond}); Spark's own message is hidden because it may quote "
                           "data values: rerun with --debug to see it")
