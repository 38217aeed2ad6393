"""The simulator (CALLGUARD_PROVIDER=simulator, the default): a small Twilio-shaped phone
platform inside the service, so callguard runs with no account. It IS Twilio-shaped on
purpose: its webhooks are Twilio's (signed the same way, with TWILIO_AUTH_TOKEN or the
development token), its answers TwiML, and its REST side has the Twilio adapter's shape,
so it is the Twilio package with its own client, audio, secret, routes and worker.

    platform.py   SimulatedPlatform: Twilio's recording state machine and callbacks (also
                  behind the tests' Twilio-compatible server); resources.py its vocabulary
    provider.py   its REST side, with a request log and fault injection
    callbacks.py  sends its status callbacks, signed, to our own webhooks
    routes.py     /simulator/… (hang up, inspect, faults), signed like webhooks
    media.py      a silent WAV per recording; dev_token.py the development signing token
    drive.py, scenarios.py, report.py   `callguard simulate`"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter

from app.config import Settings
from app.platforms.twilio import TwilioPlatform
from app.retention.media import MediaSource

if TYPE_CHECKING:
    from app.platforms.base import Worker
    from app.platforms.simulation import Simulate
    from app.runtime.services import Services


class SimulatorPlatform(TwilioPlatform):
    name = "simulator"

    def client(self, settings: Settings) -> Any:
        from app.platforms.simulator.provider import SimulatorProvider

        return SimulatorProvider()

    def media(self, client: Any, settings: Settings) -> MediaSource:
        from app.platforms.simulator.media import SimulatedMedia

        return SimulatedMedia(client)

    def webhook_secret(self, settings: Settings) -> str:
        from app.platforms.simulator.dev_token import dev_token

        return settings.twilio_auth_token or dev_token()

    def routers(self) -> list[APIRouter]:
        from app.platforms.simulator.routes import router

        return [*super().routers(), router]

    def workers(self, services: Services) -> list[Worker]:
        from app.platforms.simulator.callbacks import CallbackDispatcher
        from app.platforms.simulator.provider import SimulatorProvider

        if not isinstance(services.provider, SimulatorProvider):
            return []  # a test injected another client
        return [CallbackDispatcher(services.provider, services.webhook_token)]

    def simulation(self) -> Simulate | None:
        from app.platforms.simulator.scenarios import run

        return run


PLATFORM = SimulatorPlatform()
