"""The HTTP API, one router per resource; auth.py holds the dependencies (API key, session cookie, role, team).

Routers only translate HTTP to the store and the scorer; no measure is computed here.
"""
