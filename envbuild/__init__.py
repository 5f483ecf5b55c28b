"""envbuild command-line interface."""
