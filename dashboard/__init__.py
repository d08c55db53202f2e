"""Dashboard: staff pages that show memories and users at a glance."""
