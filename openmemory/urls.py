"""URL map: OpenMemory's API paths (no trailing slashes) plus the Django admin."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from memories.views import MemoryViewSet
from observability.views import HealthView, MetricsView
from openmemory.views import SectorsView
from users.views import UserViewSet

router = SimpleRouter(trailing_slash=False)
router.register("memory", MemoryViewSet, basename="memory")
router.register("users", UserViewSet, basename="users")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
    path("health", HealthView.as_view(), name="health"),
    path("metrics", MetricsView.as_view(), name="metrics"),
    path("sectors", SectorsView.as_view(), name="sectors"),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi"), name="docs"),
    path("", include(router.urls)),
]

handler400 = "openmemory.exceptions.handler400"
handler403 = "openmemory.exceptions.handler403"
handler404 = "openmemory.exceptions.handler404"
handler500 = "openmemory.exceptions.handler500"
