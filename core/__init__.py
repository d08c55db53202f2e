"""Core: what every app relies on (errors, settings parsing, clock, request guards)."""
