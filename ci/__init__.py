"""Continuous-integration helpers that live beside the package (not installed with it)."""
