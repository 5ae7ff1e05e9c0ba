"""The Heard/Context invariants over generated call histories."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

from tests.projections.call_history import CallHistory

CallHistory.TestCase.settings = settings(
    max_examples=400,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestCallHistory = CallHistory.TestCase
