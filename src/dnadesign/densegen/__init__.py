"""dnadesign.densegen."""
