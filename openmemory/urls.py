"""URL map: OpenMemory's API paths (no trailing slashes) plus the Django admin."""

from django.contrib import admin
from django.urls import include, path
from rest_framework.routers import SimpleRouter

from memories.views import MemoryViewSet
from openmemory.views import HealthViewSet, SectorViewSet
from users.views import UserViewSet

router = SimpleRouter(trailing_slash=False)
router.register("memory", MemoryViewSet, basename="memory")
router.register("users", UserViewSet, basename="users")
router.register("health", HealthViewSet, basename="health")
router.register("sectors", SectorViewSet, basename="sectors")

urlpatterns = [
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
    path("", include(router.urls)),
]

handler400 = "openmemory.exceptions.handler400"
handler403 = "openmemory.exceptions.handler403"
handler404 = "openmemory.exceptions.handler404"
handler500 = "openmemory.exceptions.handler500"
