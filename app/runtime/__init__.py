"""A running instance: its services wired together, background passes, logs and metrics."""
