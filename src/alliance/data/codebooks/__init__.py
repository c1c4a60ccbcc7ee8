"""Versioned codebooks (definitions and examples written for this project)."""
