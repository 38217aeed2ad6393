"""Callers' personal data: their numbers (sealed, hashed, erased) and subject access."""
