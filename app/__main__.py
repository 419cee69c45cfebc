"""``python -m app``: the service (``app/serve.py``)."""

import sys

from app.serve import main

sys.exit(main())
