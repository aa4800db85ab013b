"""dnadesign.core."""
