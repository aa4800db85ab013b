"""dnadesign.notify."""
