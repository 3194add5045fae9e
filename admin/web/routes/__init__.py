"""The web app's routers, one module per area; `app.py` includes them all."""
