"""EmbeddingField: a pgvector `vector` column on PostgreSQL, float32 bytes on SQLite."""

from __future__ import annotations

import numpy as np
from django.db import models


class EmbeddingField(models.Field):
    """Stores a 1-D float32 vector of any dimension.

    The column has no fixed dimension so that providers with different sizes can coexist
    (each row records the model that made it); the HNSW index casts to a fixed size.
    """

    description = "Embedding vector"
    empty_strings_allowed = False

    def db_type(self, connection) -> str:
        return "vector" if connection.vendor == "postgresql" else "blob"

    def from_db_value(self, value, expression, connection):
        if value is None:
            return None
        if isinstance(value, str):  # pgvector text form: "[1,2,3]"
            return np.array(value[1:-1].split(","), dtype=np.float32)
        if isinstance(value, np.ndarray):
            return value.astype(np.float32, copy=False)
        return np.frombuffer(bytes(value), dtype=np.float32)

    def to_python(self, value):
        if value is None or isinstance(value, np.ndarray):
            return value
        return self.from_db_value(value, None, None)

    def get_db_prep_value(self, value, connection, prepared=False):
        if value is None:
            return None
        array = np.asarray(value, dtype=np.float32)
        if connection.vendor == "postgresql":
            return to_pgvector_text(array)
        return array.tobytes()


def to_pgvector_text(array: np.ndarray) -> str:
    # map() of a bound format: half the time of an f-string in a generator, on every add's
    # and every query's vector.
    return "[" + ",".join(map(_ELEMENT.format, array.tolist())) + "]"


_ELEMENT = "{:.7g}"
