"""USR sync: diff / pull / push over SSH + rsync."""
