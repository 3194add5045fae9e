"""The staff workspace and the customer portal: one router per area in `routes/`, templates per area, static files.

The application that serves them (and the REST API, `admin.api`) is made by `admin.app.create_app`.
"""
