"""Masking strategies as vectorized transforms over Arrow arrays (no Spark)."""
