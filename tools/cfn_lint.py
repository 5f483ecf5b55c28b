"""``cfn-lint`` with a deeper recursion limit (same arguments as the console script).

SAM's transform writes each state machine definition as one ``Fn::Join`` of its lines (about
1,200 for the build workflow); cfn-lint's validator recurses once per element and stops with
E1022 "maximum recursion depth exceeded" at Python's default limit of 1,000.
"""

from __future__ import annotations

import sys

from cfnlint.runner import main

if __name__ == "__main__":
    sys.setrecursionlimit(20_000)
    sys.exit(main())
