"""The audit log: append-only in code (log.py has no update or delete function), a hash
chain (chain.py, pure: the tables read their times with it, so this file imports nothing),
placed in order by the sequencer (sequencer.py: importing log.py registers it on every
Session), an RFC 9162 Merkle tree with proofs (merkle.py, tree.py), verification, signed
tree heads and the outside monitor."""
