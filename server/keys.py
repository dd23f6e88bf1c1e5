"""Typed application keys (aiohttp's web.AppKey) for what create_app builds."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import asyncpg

    from server.config import Config
    from server.feature import Feature
    from server.services import Services
    from server.sockets import LiaisonServer

CONFIG: web.AppKey[Config] = web.AppKey("config")
DSN: web.AppKey[str] = web.AppKey("dsn")
POOL: web.AppKey[asyncpg.Pool] = web.AppKey("pool")
SIO: web.AppKey[LiaisonServer] = web.AppKey("sio")
SERVICES: web.AppKey[Services] = web.AppKey("services")
FEATURES_KEY: web.AppKey[list[Feature]] = web.AppKey("features")
