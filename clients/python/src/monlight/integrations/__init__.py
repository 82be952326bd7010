"""Framework integrations (``monlight.integrations.fastapi``)."""
