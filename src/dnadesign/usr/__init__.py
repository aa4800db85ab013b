"""dnadesign.usr."""
