"""python bench/loadgen [options]: the load generator's command line (see __init__.py)."""

import os
import sys

if not __package__:
    # run as a directory (python bench/loadgen): import the package from bench/, so that
    # its module names do not shadow anything as top-level modules
    sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    from loadgen.cli import main
else:
    from .cli import main

sys.exit(main())
