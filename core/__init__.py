"""Pieces every app uses: metric definitions, JSON logs and request ids."""
