"""Bundled material that ships with the app: the demo's training scenarios (``resources.demo``)."""
