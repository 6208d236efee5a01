"""The deployments a backend is known to have, so a name can be checked where it is given.

The embedded emulator's are its configured ones. Azure's and OpenAI's data planes have no list of
deployments (and an out-of-process emulator is configured elsewhere), so there a name is not checked
(`None`), never refused.
"""

from __future__ import annotations

from aoai_batch.settings import EmulatorSettings, Settings


def known_deployments(settings: Settings) -> list[str] | None:
    """The sorted deployment names of the backend `settings` select, or None when they cannot be known."""
    if settings.provider == "emulator" and not settings.endpoint:
        return sorted(EmulatorSettings(home=settings.emulator_home).deployment_models)
    return None
