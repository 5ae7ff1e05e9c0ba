"""Earshot, a real-time AI phone agent, as it is installed and imported.

The code lives in the folders at the repository root (``actors/``, ``events/``,
``projections/``, ``gateway/``, ``migrations/``); this package only links to them, so that
every module has one installed name (``earshot.events``, never a generic top-level
``events``) whether the project is run from a checkout, an editable install or a wheel.
"""
