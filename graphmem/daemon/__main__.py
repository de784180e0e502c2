"""``python -m graphmem.daemon``: the search process (see :mod:`graphmem.daemon.server`)."""

from __future__ import annotations

import sys

from graphmem.daemon.server import main

sys.exit(main())
