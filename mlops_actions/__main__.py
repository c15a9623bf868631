from __future__ import annotations

import sys

from mlops_actions.cli import main

sys.exit(main())
