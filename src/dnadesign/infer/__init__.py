"""infer: score a USR dataset's sequences with a model preset and write the scores back as overlays.

Built-in CPU presets (PWM scans, a k-mer Markov background) and Evo2 (optional extra, local
checkpoint). Imports only `dnadesign.core` and the `usr` Python API. See docs/infer.md.
"""
