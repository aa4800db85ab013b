"""HPC-backed CI: one driver run on a compute node; see docs/hpc-ci.md."""
