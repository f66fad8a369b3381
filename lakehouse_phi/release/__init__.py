"""Safe release: re-identification risk (k-anonymity, l-diversity) and signed, suppressed exports."""
