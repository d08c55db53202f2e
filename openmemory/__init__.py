"""The OpenMemory Django project; importing the package itself exposes only the HTTP client."""

from openmemory.client import OpenMemory, OpenMemoryError

__all__ = ["OpenMemory", "OpenMemoryError"]
