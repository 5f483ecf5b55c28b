"""envbuild benchmark: builds on the emulator against the modelled AWS critical path (issue 8)."""
