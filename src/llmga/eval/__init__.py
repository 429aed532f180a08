"""Measurements: the brain's prompt refinement, and (later) the paper's tables."""
