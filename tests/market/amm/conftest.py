"""Shared setup for the market.amm tests.

The test directories are deliberately *not* packages: a ``tests/strategy/__init__.py`` would make pytest import
these modules as ``market.amm.test_*`` with ``tests/`` first on ``sys.path``, shadowing the real ``strategy``
package.  Without ``__init__.py`` files pytest imports each test file by its (unique) basename instead.

``python -m pytest`` (what ``./run test`` uses) puts the repository root on ``sys.path``; the bare ``pytest``
script does not when the project is not pip-installed, so add it here.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[3]
if str(_ROOT) not in sys.path:
    sys.path.insert(0, str(_ROOT))
