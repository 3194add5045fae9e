"""The web app: staff workspace (`routes/`), customer portal, and the REST API (`admin.api`)."""
from .app import create_app

__all__ = ["create_app"]
