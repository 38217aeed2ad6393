"""Call routing: dialled number or IVR digit to department, and what the caller is told.
Pure, and the same on every phone platform."""
