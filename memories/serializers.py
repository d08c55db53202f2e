"""Small input serializers for the memory endpoints: types, ranges and required fields."""

from __future__ import annotations

from django.conf import settings
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from core import validation
from memories.representation import MATCH_FIELDS
from memories.sectors import SECTOR_NAMES


class StrictCharField(serializers.CharField):
    """A CharField that refuses numbers and booleans instead of turning them into text."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


def required_text(name: str, **kwargs) -> StrictCharField:
    return StrictCharField(
        error_messages={
            "required": f"{name} required",
            "blank": f"{name} required",
            "null": f"{name} required",
            "invalid": f"{name} must be a string",
            "max_length": f"{name} must be at most {{max_length}} characters",
        },
        **kwargs,
    )


@extend_schema_field({"type": "string", "pattern": validation.USER_ID_RE.pattern, "maxLength": 128})
class UserIdField(serializers.Field):
    def to_internal_value(self, data):
        try:
            return validation.clean_user_id(data)
        except validation.ServiceError as exc:
            raise serializers.ValidationError(exc.message) from None


class SectorField(serializers.ChoiceField):
    def __init__(self, **kwargs) -> None:
        super().__init__(
            choices=SECTOR_NAMES,
            error_messages={
                "invalid_choice": f"sector must be one of {', '.join(SECTOR_NAMES)}",
            },
            **kwargs,
        )


class TagsField(serializers.ListField):
    child = StrictCharField(trim_whitespace=False, allow_blank=True)

    def to_internal_value(self, data):
        if not isinstance(data, list) or not all(isinstance(tag, str) for tag in data):
            raise serializers.ValidationError("tags must be a list of strings")
        try:
            return validation.clean_tags(super().to_internal_value(data))
        except validation.ServiceError as exc:
            raise serializers.ValidationError(exc.message) from None


@extend_schema_field({"type": "object", "additionalProperties": True})
class MetadataField(serializers.Field):
    def to_internal_value(self, data):
        if not isinstance(data, dict):
            raise serializers.ValidationError("metadata must be an object")
        try:
            return validation.clean_metadata(data)
        except validation.ServiceError as exc:
            raise serializers.ValidationError(exc.message) from None


def _clean_content(value: str) -> str:
    try:
        return validation.clean_text(value, "content")
    except validation.ServiceError as exc:
        raise serializers.ValidationError(exc.message) from None


class MemoryAddSerializer(serializers.Serializer):
    content = required_text("content", max_length=settings.OM_MAX_CONTENT_CHARS)
    tags = TagsField(required=False, default=list)
    metadata = MetadataField(required=False, default=dict)
    user_id = UserIdField(required=False, allow_null=True, default=None)

    def validate_content(self, value: str) -> str:
        return _clean_content(value)


class MemoryBatchSerializer(serializers.Serializer):
    items = serializers.ListField(
        child=MemoryAddSerializer(),
        allow_empty=False,
        max_length=settings.OM_MAX_BATCH,
        error_messages={
            "required": "items required",
            "empty": "items required",
            "not_a_list": "items must be a list",
            "max_length": f"at most {settings.OM_MAX_BATCH} items per batch",
        },
    )


class MemoryUpdateSerializer(serializers.Serializer):
    content = required_text("content", required=False, max_length=settings.OM_MAX_CONTENT_CHARS)
    tags = TagsField(required=False)
    metadata = MetadataField(required=False)

    def validate_content(self, value: str) -> str:
        return _clean_content(value)

    def validate(self, attrs: dict) -> dict:
        if not attrs:
            raise serializers.ValidationError("nothing to update: send content, tags or metadata")
        return attrs


class QueryFiltersSerializer(serializers.Serializer):
    user_id = UserIdField(required=False)
    sector = SectorField(required=False)
    min_score = serializers.FloatField(
        required=False,
        min_value=0.0,
        max_value=1.0,
        error_messages={
            "invalid": "min_score must be a number",
            "min_value": "min_score must be between 0 and 1",
            "max_value": "min_score must be between 0 and 1",
        },
    )
    tags = TagsField(required=False)


def k_field() -> serializers.IntegerField:
    return serializers.IntegerField(
        required=False,
        default=8,
        min_value=1,
        max_value=settings.OM_MAX_K,
        error_messages={
            "invalid": "k must be an integer",
            "min_value": f"k must be between 1 and {settings.OM_MAX_K}",
            "max_value": f"k must be between 1 and {settings.OM_MAX_K}",
        },
    )


class MemoryQuerySerializer(serializers.Serializer):
    query = required_text("query", max_length=settings.OM_MAX_CONTENT_CHARS)
    k = k_field()
    filters = QueryFiltersSerializer(required=False, default=dict)
    # Upstream clients sometimes send user_id beside the filters rather than inside them.
    user_id = UserIdField(required=False)

    def validate_query(self, value: str) -> str:
        try:
            return validation.clean_text(value, "query")
        except validation.ServiceError as exc:
            raise serializers.ValidationError(exc.message) from None


class ReinforceSerializer(serializers.Serializer):
    id = serializers.UUIDField(error_messages={"required": "id required", "invalid": "id invalid"})
    boost = serializers.FloatField(
        required=False,
        default=settings.OM_REINFORCE_BOOST,
        min_value=0.0,
        max_value=1.0,
        error_messages={
            "invalid": "boost must be a number",
            "min_value": "boost must be between 0 and 1",
            "max_value": "boost must be between 0 and 1",
        },
    )


def page_field(name: str, default: int, minimum: int, maximum: int | None):
    bounds = f"between {minimum} and {maximum}" if maximum else f">= {minimum}"
    return serializers.IntegerField(
        required=False,
        default=default,
        min_value=minimum,
        max_value=maximum,
        error_messages={
            "invalid": f"{name} must be an integer",
            "min_value": f"{name} must be {bounds}",
            "max_value": f"{name} must be {bounds}",
            "max_string_length": f"{name} must be {bounds}",
        },
    )


class PageSerializer(serializers.Serializer):
    l = page_field("l", 100, 1, settings.OM_MAX_LIMIT)  # noqa: E741 - the API's own name
    u = page_field("u", 0, 0, 10_000_000)


class MemoryListSerializer(PageSerializer):
    sector = SectorField(required=False)
    user_id = UserIdField(required=False)


# --- Response shapes (documentation for the OpenAPI schema; views build plain dicts) -------


class MemoryOutSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    content = serializers.CharField()
    tags = serializers.ListField(child=serializers.CharField())
    metadata = serializers.DictField()
    created_at = serializers.IntegerField(help_text="milliseconds since the epoch")
    updated_at = serializers.IntegerField(help_text="milliseconds since the epoch")
    last_seen_at = serializers.IntegerField(help_text="milliseconds since the epoch")
    salience = serializers.FloatField()
    decay_lambda = serializers.FloatField()
    primary_sector = serializers.CharField()
    sectors = serializers.ListField(child=serializers.CharField())
    version = serializers.IntegerField()
    user_id = serializers.CharField(allow_null=True)


class UpdatedMemorySerializer(MemoryOutSerializer):
    ok = serializers.BooleanField()
    updated = serializers.BooleanField(help_text="always true (upstream OpenMemory's field)")


class MatchOutSerializer(serializers.Serializer):
    """A query match: its score, then the memory's fields that representation.match_item
    shows (MATCH_FIELDS), described once by MemoryOutSerializer."""

    score = serializers.FloatField(
        help_text="in [0, 1], higher is better: the hybrid score (OM_RANKING=hybrid, the default)"
        " or the cosine similarity clipped to [0, 1] (OM_RANKING=vector)"
    )

    def get_fields(self) -> dict[str, serializers.Field]:
        memory = MemoryOutSerializer().get_fields()
        return {**super().get_fields(), **{name: memory[name] for name in MATCH_FIELDS}}


class AddedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    primary_sector = serializers.CharField()
    sectors = serializers.ListField(child=serializers.CharField())
    deduplicated = serializers.BooleanField(required=False)


class BatchAddedSerializer(serializers.Serializer):
    ids = serializers.ListField(child=serializers.UUIDField())
    items = AddedSerializer(many=True)


class QueryResultSerializer(serializers.Serializer):
    query = serializers.CharField()
    matches = MatchOutSerializer(many=True)


class MemoryListOutSerializer(serializers.Serializer):
    items = MemoryOutSerializer(many=True)


class ReinforcedSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    id = serializers.UUIDField()
    salience = serializers.FloatField()


class DeletedSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    id = serializers.CharField()


class MillisecondsField(serializers.IntegerField):
    """Epoch milliseconds in, aware datetimes out."""

    def to_internal_value(self, data):
        from datetime import UTC, datetime

        value = super().to_internal_value(data)
        if value < 0:
            raise serializers.ValidationError("timestamp must not be negative")
        try:
            return datetime.fromtimestamp(value / 1000, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise serializers.ValidationError("timestamp out of range") from None


class ImportRecordSerializer(MemoryAddSerializer):
    """One line of an export (see memories/representation.py), as `manage.py import` reads."""

    id = serializers.UUIDField()
    created_at = MillisecondsField(required=False)
    updated_at = MillisecondsField(required=False)
    last_seen_at = MillisecondsField(required=False)
    salience = serializers.FloatField(required=False, min_value=0.0, max_value=1.0)
    primary_sector = SectorField(required=False)
    sectors = serializers.ListField(child=SectorField(), required=False)
    version = serializers.IntegerField(required=False, min_value=1)
