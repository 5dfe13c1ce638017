"""``python -m corral``: the command line.

``python -m`` puts the working directory first on ``sys.path``, where a
command corral ran there may have left a module (``json.py``) that a later
import would take, outside any sandbox.  corral itself is imported by then,
so the entry goes before anything else is (``python -P`` leaves none).
"""

import gc
import os
import sys

if not sys.flags.safe_path and sys.path and sys.path[0] == os.getcwd():
    del sys.path[0]
gc.disable()  # as the corral command does, and for the same reason (scripts/corral)

from ._cli import main  # noqa: E402 - after sys.path is made safe

main()
