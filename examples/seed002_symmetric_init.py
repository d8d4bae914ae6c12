"""Shim: this scenario ships with the demo; the code is ``resources/demo/seed002_symmetric_init.py``.

``import examples.<name>`` is that module itself; ``python -m examples.<name>`` runs it.
"""

from __future__ import annotations

import sys

if __package__ in (None, ""):  # run as a script: make the repository importable
    import os

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from resources.demo import seed002_symmetric_init as _scenario

if __name__ == "__main__":
    _scenario.C.main(_scenario.run, __file__, _scenario.__doc__)
else:
    sys.modules[__name__] = _scenario
