"""The people's API paths accept the ids a platform's package says it gives
(`PhonePlatform.id_pattern`, joined in app/platforms/__init__.py, checked by app/api/deps.py):
a platform whose ids are UUIDs with hyphens, as Amazon Connect's ContactIds are, reaches
the path check, which today's Twilio pattern alone refuses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from fastapi.testclient import TestClient

from app.people.users import Role
from app.runtime.services import Services
from tests.factories import bearer, make_user

ROOT = Path(__file__).resolve().parents[2]
CONTACT_ID = "4a573372-1f28-4e26-b97b-0123456789ab"

UUID_PLATFORM = """
class UuidPhone:
    name = "uuidphone"
    id_pattern = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


PLATFORM = UuidPhone()
"""

# A fresh interpreter whose app.platforms also searches a folder holding the package above
# (as if it lay beside twilio/), so discovery, the joined pattern and the routes are real.
CHILD = """
import importlib.util, json, sys

spec = importlib.util.find_spec("app.platforms")
spec.submodule_search_locations.append(sys.argv[1])
platforms = importlib.util.module_from_spec(spec)
sys.modules["app.platforms"] = platforms
spec.loader.exec_module(platforms)

from fastapi.testclient import TestClient
from app.config import load_settings
from app.main import create_app
from app.people.users import Role
from app.platforms.simulator.provider import SimulatorProvider
from app.runtime.services import build_services
from tests.factories import bearer, make_user

settings = load_settings(
    database_url=sys.argv[2], public_base_url="https://callguard.example.org", env="test"
)
services = build_services(settings, provider=SimulatorProvider())
token = make_user(services, "sam", Role.SUPERVISOR)
with TestClient(create_app(settings, services), base_url="https://callguard.example.org") as c:
    answers = {sid: c.get(f"/api/v1/calls/{sid}", headers=bearer(token)).status_code
               for sid in sys.argv[3:]}
services.close()
print(json.dumps({"platforms": sorted(platforms.PLATFORMS), "answers": answers}))
"""


def test_an_id_no_platform_gives_is_refused(client: TestClient, services: Services) -> None:
    """The joined pattern takes Twilio's sids and Connect's UUIDs (both packages are here:
    a call's id passes, unknown, as 404), and nothing else (422), hyphens or not."""
    token = make_user(services, "sam", Role.SUPERVISOR)
    answers = {
        sid: client.get(f"/api/v1/calls/{sid}", headers=bearer(token)).status_code
        for sid in (CONTACT_ID, "CA" + "0" * 32, "4a573372-1f28-4e26", "CA-0", "a" * 65)
    }
    assert answers == {
        CONTACT_ID: 404,
        "CA" + "0" * 32: 404,
        "4a573372-1f28-4e26": 422,
        "CA-0": 422,
        "a" * 65: 422,
    }


def test_a_platforms_id_pattern_reaches_the_path_check(migrated_url: str, tmp_path: Path) -> None:
    (tmp_path / "uuidphone").mkdir()
    (tmp_path / "uuidphone" / "__init__.py").write_text(UUID_PLATFORM)
    twilio_sid = "CA" + "0" * 32
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(tmp_path), migrated_url, CONTACT_ID, twilio_sid, "a!b"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.splitlines()[-1])
    assert "uuidphone" in result["platforms"]
    # Unknown calls, so 404: the ids passed the path check. Neither pattern takes "a!b".
    assert result["answers"] == {CONTACT_ID: 404, twilio_sid: 404, "a!b": 422}
