"""Core: what every app relies on (errors, settings parsing, clock, request guards, metric
definitions, JSON logs and request ids)."""
