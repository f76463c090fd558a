"""Settings for the Acumatica ⇄ Magento connector.

Everything comes from the environment (or an optional `.env` beside manage.py) through
django-environ. Without `DATABASE_URL` and `CELERY_BROKER_URL` the connector runs on its
embedded default: SQLite (WAL) and kombu's filesystem transport, both under `var/`.
"""

from __future__ import annotations

import base64
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("CONNECTOR_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=False)
SANDBOX_ENABLED = env.bool("SANDBOX_ENABLED", default=False)


def _secret_from_env_or_var(variable: str, make_new) -> str:
    """A secret from the environment; with DEBUG on, generated once into var/ (mode 600)."""
    value = env.str(variable, default="")
    if value:
        return value
    if not DEBUG:
        raise ImproperlyConfigured(
            f"{variable} is not set. Set it in the environment or in .env "
            "(it is only generated automatically when DEBUG is on)."
        )
    path = VAR_DIR / variable.lower()
    if not path.exists():
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(make_new())
    return path.read_text().strip()


SECRET_KEY = _secret_from_env_or_var("SECRET_KEY", lambda: secrets.token_urlsafe(50))
CONNECTOR_ENCRYPTION_KEY = _secret_from_env_or_var(
    "CONNECTOR_ENCRYPTION_KEY",
    lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
)
CONNECTOR_OLD_ENCRYPTION_KEYS = env.list("CONNECTOR_OLD_ENCRYPTION_KEYS", default=[])

CONNECTOR_BASE_URL = env.str("CONNECTOR_BASE_URL", default="http://127.0.0.1:8000").rstrip("/")
_base_url = urlsplit(CONNECTOR_BASE_URL)
if _base_url.scheme not in ("http", "https") or not _base_url.hostname:
    raise ImproperlyConfigured(
        f"CONNECTOR_BASE_URL must be an http(s) URL with a host, not {CONNECTOR_BASE_URL!r}."
    )
SERVED_OVER_HTTPS = _base_url.scheme == "https"

_default_hosts = [_base_url.hostname]
if DEBUG:
    _default_hosts += ["127.0.0.1", "localhost", "[::1]"]
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=_default_hosts)
CSRF_TRUSTED_ORIGINS = [f"{_base_url.scheme}://{_base_url.netloc}"]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_celery_beat",
    "axes",
    "connector",
    "setup_params",
    "message_queue",
    "sandbox",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "connector.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "connector.roles.RoleRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: it turns a locked-out login into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "connector.urls"
WSGI_APPLICATION = "connector.wsgi.application"

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
                "connector.context_processors.connector",
            ],
        },
    },
]

# Databases: PostgreSQL in production, SQLite (WAL, IMMEDIATE transactions) embedded.
SQLITE_PATH = VAR_DIR / "connector.sqlite3"
DATABASE_URL = env.str("DATABASE_URL", default="") or f"sqlite:///{SQLITE_PATH}"
DATABASES = {"default": env.db_url_config(DATABASE_URL)}
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Failed logins: 5 in a row for one username from one address lock that pair out for 15
# minutes (django-axes); a manager unlocks it sooner under Admin › Axes › Access attempts.
# The axes backend only refuses locked-out logins; the model backend checks passwords.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_RESET_ON_SUCCESS = True
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

MESSAGE_TAGS = {40: "danger"}

# HTTPS: secure cookies, HSTS and redirect whenever the connector is served over HTTPS.
if env.str("SECURE_PROXY_SSL_HEADER", default=""):
    SECURE_PROXY_SSL_HEADER = tuple(env.list("SECURE_PROXY_SSL_HEADER"))
SESSION_COOKIE_SECURE = SERVED_OVER_HTTPS
CSRF_COOKIE_SECURE = SERVED_OVER_HTTPS
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=SERVED_OVER_HTTPS)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000 if SERVED_OVER_HTTPS else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SERVED_OVER_HTTPS
SECURE_HSTS_PRELOAD = SERVED_OVER_HTTPS
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"
# The Content-Security-Policy every answer carries: connector/security.py.

# Celery: the message only says "wake up and look at the table".
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="") or "filesystem://"
if CELERY_BROKER_URL == "filesystem://":
    _broker_folder = VAR_DIR / "broker"
    (_broker_folder / "queue").mkdir(parents=True, exist_ok=True)
    (_broker_folder / "processed").mkdir(parents=True, exist_ok=True)
    (_broker_folder / "control").mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_folder / "queue"),
        "data_folder_out": str(_broker_folder / "queue"),
        "processed_folder": str(_broker_folder / "processed"),
        "control_folder": str(_broker_folder / "control"),
        "store_processed": False,
    }
else:
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ROUTES = {"message_queue.tasks.run_processor": {"queue": "processors"}}
CELERY_BEAT_SCHEDULER = "connector.beat:HeartbeatScheduler"
CELERY_TIMEZONE = TIME_ZONE
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_BEAT_SCHEDULE = {
    "connector-heartbeat": {
        "task": "connector.tasks.heartbeat",
        "schedule": 30.0,
        "options": {"queue": "default", "expires": 25},
    },
}

# /healthz: how old a heartbeat may be before its process counts as down.
HEARTBEAT_STALE_SECONDS = env.int("HEARTBEAT_STALE_SECONDS", default=90)

LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"process_role": {"()": "connector.log.ProcessRoleFilter"}},
    "formatters": {
        "connector": {
            "format": (
                "%(asctime)s %(process_role)s[%(process)d] %(levelname)s %(name)s: %(message)s"
            )
        }
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": "connector",
            "filters": ["process_role"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # django-axes says "AXES: BEGIN …" at every start, also of a command whose stdout is
        # read by a script (`connector_config show --json`); its lockouts still log.
        "axes.apps": {"level": "WARNING"},
    },
}

# --- Alerts and retention (issue 7: connector/alerts.py, connector/retention.py) ------------
# Alert e-mail goes through Django's mail settings. EMAIL_URL as django-environ reads it,
# e.g. smtp+tls://user:password@mail.example.com:587; the default prints mail to the console.
_email = env.email_url("EMAIL_URL", default="consolemail://")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email.get("EMAIL_HOST") or "localhost"
EMAIL_PORT = _email.get("EMAIL_PORT") or 25
EMAIL_HOST_USER = _email.get("EMAIL_HOST_USER") or ""
EMAIL_HOST_PASSWORD = _email.get("EMAIL_HOST_PASSWORD") or ""
EMAIL_USE_TLS = _email.get("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = _email.get("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)  # a stuck mail server must not stall beat
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="connector@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Sent, superseded and dismissed messages (and received push notification ids) are kept this
# long. At least 3 days: Acumatica resends an undelivered notification for 2 days, and the
# received ids are what deduplicates a resend.
CONNECTOR_RETENTION_DAYS = env.int("CONNECTOR_RETENTION_DAYS", default=14)
CONNECTOR_STATS_RETENTION_DAYS = env.int("CONNECTOR_STATS_RETENTION_DAYS", default=90)
if CONNECTOR_RETENTION_DAYS < 3:
    raise ImproperlyConfigured(
        f"CONNECTOR_RETENTION_DAYS must be at least 3 (Acumatica resends for 2 days), "
        f"not {CONNECTOR_RETENTION_DAYS}."
    )
if CONNECTOR_STATS_RETENTION_DAYS < 1:
    raise ImproperlyConfigured(
        f"CONNECTOR_STATS_RETENTION_DAYS must be at least 1, not {CONNECTOR_STATS_RETENTION_DAYS}."
    )

CELERY_BEAT_SCHEDULE["connector-catch-up"] = {
    "task": "message_queue.tasks.catch_up_due",  # each profile's own interval, checked each minute
    "schedule": 60.0,
    "options": {"queue": "default", "expires": 55},
}
CELERY_BEAT_SCHEDULE["connector-retention"] = {
    "task": "connector.tasks.purge_old_rows",
    "schedule": 3600.0,  # hourly: each run deletes about an hour's worth, never a day's pile
    "options": {"queue": "default", "expires": 3300},
}
