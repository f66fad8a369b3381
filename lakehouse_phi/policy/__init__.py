"""The policy file: typed model and loader (``shared/design/policy.md``)."""

from lakehouse_phi.policy.load import LoadedPolicy, check_policy, load_policy, policy_from_data
from lakehouse_phi.policy.model import Policy

__all__ = ["LoadedPolicy", "Policy", "check_policy", "load_policy", "policy_from_data"]
