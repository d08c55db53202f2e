"""Operators' endpoints: /health, /metrics (Prometheus) and the request log and timing."""
