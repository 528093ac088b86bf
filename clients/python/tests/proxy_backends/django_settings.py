"""The smallest Django project serving the handlers:
``DJANGO_SETTINGS_MODULE=proxy_backends.django_settings django-admin runserver``.
CSRF protection is on, as in a real project: the proxy views are exempt."""

SECRET_KEY = "switchboard-proxy-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "proxy_backends.django_urls"
INSTALLED_APPS: list[str] = []
MIDDLEWARE = [
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
}
