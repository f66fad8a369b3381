"""Governance SQL: policy -> IR (:mod:`.ir`) -> a generator per target (:mod:`.dialects`) -> files (:mod:`.compile`).

No PySpark here: ``lakehouse-phi compile`` runs in well under a second.
"""

from lakehouse_phi.sql.compile import Compiled, compile_ir, compile_policy
from lakehouse_phi.sql.dialects import TARGETS
from lakehouse_phi.sql.generator import Statement
from lakehouse_phi.sql.ir import PolicyIR, build_ir

__all__ = ["TARGETS", "Compiled", "PolicyIR", "Statement", "build_ir", "compile_ir", "compile_policy"]
