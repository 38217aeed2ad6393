"""The HTTP edge: thin handlers that authenticate, parse, call one service, render."""
