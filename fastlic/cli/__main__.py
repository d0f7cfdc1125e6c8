"""``python -m fastlic.cli``: the ``fastlic`` command without its console script."""

import sys

from . import main

sys.exit(main())
