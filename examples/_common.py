"""Shared plumbing of the example scenarios: it ships with the demo, in ``resources/demo/_common.py``.

``from examples import _common as C`` is that module itself.
"""

from __future__ import annotations

import sys

from resources.demo import _common

sys.modules[__name__] = _common
