"""``python -m dgm.cli``: the ``dgm`` command."""

import sys

from dgm.cli import main

sys.exit(main())
