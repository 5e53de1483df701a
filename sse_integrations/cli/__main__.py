"""``python -m sse_integrations.cli``: the same as the ``sse-integrations`` console script."""

import sys

from . import main

sys.exit(main())
