"""The audit log: append-only in code (log.py has no update or delete function), a hash
chain (chain.py, pure: the tables read their times with it, so this file imports nothing),
checkpoints, Merkle proofs and verification."""
