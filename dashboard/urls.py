"""URLs of the staff dashboard."""

urlpatterns: list = []
