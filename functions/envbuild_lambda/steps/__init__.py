"""Plain domain functions, one module per step; clients are passed in, nothing is read globally."""
