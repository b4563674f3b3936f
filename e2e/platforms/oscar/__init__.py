"""A stock Django Oscar shop (PyPI django-oscar 4.2.1 on Django 5.2): the e2e suite's second origin.

Only project configuration lives here (settings, URLs, the WSGI entry point, a command that fills
the shop): Oscar's own templates and views serve every page, unchanged, as a shop owner would run it.
"""
