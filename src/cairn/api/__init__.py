"""The REST API: a thin adapter over the services. ``create_app(settings)`` builds it."""
