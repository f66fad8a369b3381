"""The HTML compliance report (``lakehouse-phi report``): what the policy protects and how the runs went, on one
self-contained page, for a compliance officer. Built from the policy and the audit trail only, which hold names,
counts and versions: the report never shows a data value.
"""

from lakehouse_phi.report.html import render_html
from lakehouse_phi.report.model import ReportData, build_report_data

__all__ = ["ReportData", "build_report_data", "render_html"]
