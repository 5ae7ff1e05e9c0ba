"""Projections: pure folds of a call's events into the views Earshot answers questions with.

- ``heard``: per turn, what the caller actually heard (``Heard``, ``AgentTurn``).
- ``context``: the LLM conversation, built from heard text only.
- ``metrics``: per-turn latencies and interruptions.
- ``replay``: all of them at once, and their JSON/text renderings.
"""
