"""The Django project under ASGI: ``uvicorn proxy_backends.django_asgi:application``
(``DJANGO_SETTINGS_MODULE=proxy_backends.django_settings``)."""

from django.core.asgi import get_asgi_application

application = get_asgi_application()
