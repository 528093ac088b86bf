"""The handlers in FastAPI: ``uvicorn proxy_backends.fastapi_app:app``."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from switchboard_rt.fastapi import fastapi_router

from .handlers import SEEN, proxy

app = FastAPI()
app.include_router(fastapi_router(proxy))


@app.get("/seen")
async def seen() -> dict[str, Any]:
    return SEEN
