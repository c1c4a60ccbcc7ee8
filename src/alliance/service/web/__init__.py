"""The dashboard: server-rendered pages (Jinja2, plain forms) with the report's Vega-Lite charts, all served locally.

Pages read through the same team-scoped queries as the API; every form post carries the session's CSRF token.
"""
