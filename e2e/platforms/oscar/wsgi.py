"""The WSGI application waitress serves; static files (Oscar's CSS, JS, images) come from the same
process, through Django's StaticFilesHandler, as there is no web server in front in the tests."""

from __future__ import annotations

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "e2e.platforms.oscar.settings")

from django.contrib.staticfiles.handlers import StaticFilesHandler  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

application = StaticFilesHandler(get_wsgi_application())
