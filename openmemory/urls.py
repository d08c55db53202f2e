"""URL map: OpenMemory's API paths (no trailing slashes) plus the Django admin."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from mcpserver.views import McpView
from memories.views import MemoryViewSet, SectorsView
from observability.views import HealthView, MetricsView
from users.views import MemoryContextView, UserViewSet

router = SimpleRouter(trailing_slash=False)
router.register("memory", MemoryViewSet, basename="memory")
router.register("users", UserViewSet, basename="users")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
    path("health", HealthView.as_view(), name="health"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("sectors", SectorsView.as_view(), name="sectors"),
    path("mcp", McpView.as_view(), name="mcp"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi"), name="docs"),
    # Before the router: its memory/<id> route would take "context" for an id.
    path("memory/context", MemoryContextView.as_view(), name="memory-context"),
    path("", include(router.urls)),
]

handler400 = "core.exceptions.handler400"
handler403 = "core.exceptions.handler403"
handler404 = "core.exceptions.handler404"
handler500 = "core.exceptions.handler500"
