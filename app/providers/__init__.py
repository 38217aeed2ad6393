"""Telephony providers: a Protocol and its adapters (Twilio, the simulator)."""
