"""dnadesign: dense DNA library design toolkit."""
__version__ = "0.1.0"
