"""callguard: call-recording control middleware (the README's module map says what
each package holds)."""
