"""Call routing: dialled number or IVR digit to department, and the TwiML builders. Pure."""
