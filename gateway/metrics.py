"""``GET /metrics`` in Prometheus' text format."""

from __future__ import annotations

from gateway.playout import LATENESS_SAMPLES
from gateway.services import Services
from projections.metrics import percentile


def render(services: Services) -> str:
    counters = services.counters
    writer = services.writer
    lines = [
        "# TYPE earshot_calls_active gauge",
        f"earshot_calls_active {counters.calls_active}",
        "# TYPE earshot_calls_started_total counter",
        f"earshot_calls_started_total {counters.calls_started}",
        "# TYPE earshot_webhooks_refused_total counter",
        f"earshot_webhooks_refused_total {counters.webhooks_refused}",
        "# TYPE earshot_calls_refused_total counter",
        *(
            f'earshot_calls_refused_total{{reason="{reason}"}} {counters.calls_refused[reason]}'
            for reason in ("busy", "store unavailable", "draining", "rate limited")
        ),
        "# TYPE earshot_calls_capacity gauge",
        f"earshot_calls_capacity {services.admission.capacity}",
        "# TYPE earshot_streams_refused_total counter",
        f"earshot_streams_refused_total {counters.streams_refused}",
        "# TYPE earshot_frames_refused_total counter",
        f"earshot_frames_refused_total {counters.frames_refused}",
        "# TYPE earshot_media_frames_dropped_total counter",
        f"earshot_media_frames_dropped_total {counters.media_frames_dropped}",
        "# TYPE earshot_llm_server_restarts_total counter",
        f"earshot_llm_server_restarts_total {counters.llm_server_restarts}",
        "# TYPE earshot_events_committed_total counter",
        f"earshot_events_committed_total {writer.events_committed if writer else 0}",
        "# TYPE earshot_pacer_lateness_ms summary",
    ]
    samples = list(LATENESS_SAMPLES)
    for q in (50, 95, 99):
        value = percentile(samples, q)
        lines.append(f'earshot_pacer_lateness_ms{{quantile="{q / 100}"}} {value or 0:.3f}')
    lines.append(f"earshot_pacer_lateness_ms_count {len(samples)}")
    return "\n".join(lines) + "\n"
