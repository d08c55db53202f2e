"""Users: per-user summaries and the per-user endpoints."""
