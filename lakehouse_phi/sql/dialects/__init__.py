"""Targets: each states only what differs from :class:`lakehouse_phi.sql.generator.Generator`."""

from __future__ import annotations

from lakehouse_phi.sql.dialects.databricks import Databricks
from lakehouse_phi.sql.dialects.databricks_abac import DatabricksAbac
from lakehouse_phi.sql.dialects.dynamic_views import DynamicViews
from lakehouse_phi.sql.generator import Generator

#: target name -> generator class
TARGETS: dict[str, type[Generator]] = {g.target: g for g in (Databricks, DatabricksAbac, DynamicViews)}

__all__ = ["TARGETS", "Databricks", "DatabricksAbac", "DynamicViews"]
