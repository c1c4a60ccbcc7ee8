"""Seeded training commands for the small heads that lenses ship (each writes a versioned file and a model card)."""
