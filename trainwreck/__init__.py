"""Trainwreck's command line (``trainwreck``, ``python -m trainwreck``, ``python main.py``).

The libraries are the sibling packages: ``recorders`` (record a run), ``analysis``
(diagnose it), ``gui`` (the desktop app).
"""

__version__ = "0.1.0"
