"""The call-control service: apply a fact, decide, reconcile with the platform, audit."""
