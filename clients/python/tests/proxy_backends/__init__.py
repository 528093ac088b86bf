"""The backends the proxy tests run under real servers: one set of handlers
(``handlers.py``), mounted in FastAPI (``fastapi_app.py``, under uvicorn)
and in Django (``django_settings.py``, ``django_urls.py``, under
``runserver``)."""
