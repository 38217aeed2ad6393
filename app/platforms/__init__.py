"""The phone platforms callguard runs on, one package each (see base.py for what a package
provides). The core never imports them: app/runtime/services.py picks the configured one
(CALLGUARD_PROVIDER) by name, and the people's API accepts the ids any of them can give."""

from __future__ import annotations

import importlib
import pkgutil

from app.platforms.base import PhonePlatform


def _load() -> dict[str, PhonePlatform]:
    """Every package here, by the name CALLGUARD_PROVIDER gives it. A package's __init__
    names what it provides and imports its heavy parts (SDKs, routes) only when asked."""
    found: dict[str, PhonePlatform] = {}
    for module in pkgutil.iter_modules(__path__):
        if module.ispkg:
            platform: PhonePlatform = importlib.import_module(f"{__name__}.{module.name}").PLATFORM
            found[platform.name] = platform
    return found


PLATFORMS = _load()
# Ids of calls and recordings in the people's API paths: as any platform gives them.
PATH_ID = "^(?:" + "|".join(dict.fromkeys(p.id_pattern for p in PLATFORMS.values())) + ")$"


def platform_named(name: str) -> PhonePlatform:
    return PLATFORMS[name]
