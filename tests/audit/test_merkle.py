"""The Merkle tree of app/audit/merkle.py against an independent implementation, published
vectors, and altered proofs.

`Reference` below is written here straight from RFC 9162's recursive definitions (MTH,
PATH, PROOF/SUBPROOF in sections 2.1.1, 2.1.3.1 and 2.1.4.1) with hashlib alone, and
imports nothing of the project's: the project's proofs, built from stored subtree hashes,
must equal it for every tree size 1..64, every leaf and every pair m <= n, and for a few
large trees. The verifiers must accept those proofs and reject every alteration.
"""

from __future__ import annotations

import hashlib
import random

import pytest

from app.audit import merkle
from app.audit.merkle import (
    EMPTY_ROOT,
    Frontier,
    MemoryNodeStore,
    MissingNode,
    Node,
    consistency_proof,
    inclusion_proof,
    verify_consistency,
    verify_inclusion,
)

# -- the independent reference: RFC 9162 section 2.1, recursively ---------------------------


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


class Reference:
    """D[lo:hi] of a fixed list of entries; MTH memoised by (lo, hi) so large trees stay
    quick (the definitions are unchanged)."""

    def __init__(self, entries: list[bytes]) -> None:
        self.d = entries
        self.memo: dict[tuple[int, int], bytes] = {}

    @staticmethod
    def k(n: int) -> int:
        """The largest power of two smaller than n (n > 1)."""
        k = 1
        while k * 2 < n:
            k *= 2
        return k

    def mth(self, lo: int, hi: int) -> bytes:
        n = hi - lo
        if n == 0:  # MTH({}) = SHA-256()
            return sha256(b"")
        if n == 1:  # MTH({d(0)}) = SHA-256(0x00 || d(0))
            return sha256(b"\x00" + self.d[lo])
        if (lo, hi) not in self.memo:  # MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) || MTH(D[k:n]))
            k = self.k(n)
            self.memo[lo, hi] = sha256(b"\x01" + self.mth(lo, lo + k) + self.mth(lo + k, hi))
        return self.memo[lo, hi]

    def path(self, m: int, lo: int, hi: int) -> list[bytes]:
        """PATH(m, D[lo:hi]), m relative to lo."""
        n = hi - lo
        if n == 1:  # PATH(0, {d(0)}) = {}
            return []
        k = self.k(n)
        if m < k:  # PATH(m, D[n]) = PATH(m, D[0:k]) : MTH(D[k:n])
            return [*self.path(m, lo, lo + k), self.mth(lo + k, hi)]
        # PATH(m, D[n]) = PATH(m - k, D[k:n]) : MTH(D[0:k])
        return [*self.path(m - k, lo + k, hi), self.mth(lo, lo + k)]

    def proof(self, m: int, n: int) -> list[bytes]:
        """PROOF(m, D[n]) = SUBPROOF(m, D[n], true), 0 < m < n."""
        return self.subproof(m, 0, n, True)

    def subproof(self, m: int, lo: int, hi: int, b: bool) -> list[bytes]:
        n = hi - lo
        if m == n:  # SUBPROOF(m, D[m], true) = {}; SUBPROOF(m, D[m], false) = {MTH(D[m])}
            return [] if b else [self.mth(lo, hi)]
        k = self.k(n)
        if m <= k:  # SUBPROOF(m, D[0:k], b) : MTH(D[k:n])
            return [*self.subproof(m, lo, lo + k, b), self.mth(lo + k, hi)]
        # SUBPROOF(m - k, D[k:n], false) : MTH(D[0:k])
        return [*self.subproof(m - k, lo + k, hi, False), self.mth(lo, lo + k)]


# -- fixtures ------------------------------------------------------------------------------


def entries(count: int, seed: int = 9162) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(rng.randint(0, 40)) for _ in range(count)]


def grown(values: list[bytes]) -> MemoryNodeStore:
    """A store holding the tree of `values`, appended in uneven batches."""
    store, frontier = MemoryNodeStore(), Frontier()
    leaves = [merkle.leaf_hash(v) for v in values]
    rng, at = random.Random(len(values)), 0
    while at < len(leaves):
        step = rng.randint(1, 9)
        store.put_many(frontier.append(leaves[at : at + step]))
        at += step
    assert frontier.size == len(values)
    return store


class Counting:
    """A NodeStore wrapper that counts batched reads and the nodes they ask for."""

    def __init__(self, inner: MemoryNodeStore) -> None:
        self.inner, self.calls, self.nodes, self.largest = inner, 0, 0, 0

    def get_many(self, nodes: list[Node]) -> list[bytes]:
        self.calls += 1
        self.nodes += len(nodes)
        self.largest = max(self.largest, len(nodes))
        return self.inner.get_many(nodes)


def flipped(digest: bytes, bit: int = 0) -> bytes:
    return bytes([digest[0] ^ (1 << bit)]) + digest[1:]


D64 = entries(64)
REF64 = Reference(D64)
LEAVES64 = [sha256(b"\x00" + d) for d in D64]
FULL64 = grown(D64)  # proofs against older tree heads come from the grown store
EXACT = {n: grown(D64[:n]) for n in range(65)}  # and from a store holding exactly n leaves
SHAPES = Reference(entries(130, seed=1))  # proof lengths of trees up to 130 (any values)


# -- roots and proofs equal the reference --------------------------------------------------


def test_hashes_are_rfc_9162s() -> None:
    assert merkle.leaf_hash(b"abc") == sha256(b"\x00abc")
    assert merkle.node_hash(b"l" * 32, b"r" * 32) == sha256(b"\x01" + b"l" * 32 + b"r" * 32)
    assert merkle.root(MemoryNodeStore(), 0) == EMPTY_ROOT == sha256(b"")


@pytest.mark.parametrize("n", range(1, 65))
def test_every_proof_of_every_size_to_64_equals_the_reference(n: int) -> None:
    root_n = REF64.mth(0, n)
    for store in (FULL64, EXACT[n]):
        assert merkle.root(store, n) == root_n
        for m in range(n):
            assert inclusion_proof(store, m, n) == REF64.path(m, 0, n)
        for m in range(1, n):
            assert consistency_proof(store, m, n) == REF64.proof(m, n)
        assert consistency_proof(store, n, n) == []
        assert consistency_proof(store, 0, n) == []


@pytest.mark.parametrize("n", [1000, 1024, 4097])
def test_large_trees_every_leaf_and_every_prefix(n: int) -> None:
    values = entries(n, seed=n)
    ref, store = Reference(values), Counting(grown(values))
    root_n = ref.mth(0, n)
    assert merkle.root(store, n) == root_n
    for m in range(n):
        proof = inclusion_proof(store, m, n)
        assert proof == ref.path(m, 0, n)
        assert verify_inclusion(sha256(b"\x00" + values[m]), m, n, proof, root_n)
    for m in range(1, n):
        proof = consistency_proof(store, m, n)
        assert proof == ref.proof(m, n)
        assert verify_consistency(m, n, ref.mth(0, m), root_n, proof)
    assert store.calls == 2 * n  # one batched read per root or proof
    assert store.largest <= 2 * (n - 1).bit_length()


def test_a_larger_tree_at_random_points() -> None:
    n = 70_001
    values = entries(n, seed=7)
    ref, store, rng = Reference(values), grown(values), random.Random(7)
    for _ in range(200):
        size = rng.randint(1, n)
        m = rng.randrange(size)
        assert inclusion_proof(store, m, size) == ref.path(m, 0, size)
        if m:
            assert consistency_proof(store, m, size) == ref.proof(m, size)


def test_reads_are_one_batch_of_at_most_2_ceil_log2_n_nodes() -> None:
    for n in range(1, 65):
        counting = Counting(FULL64)
        merkle.root(counting, n)
        assert (counting.calls, counting.nodes) == (1, n.bit_count())
        bound = 2 * (n - 1).bit_length()  # 2 ceil(log2 n)
        for m in range(n):
            counting = Counting(FULL64)
            inclusion_proof(counting, m, n)
            assert counting.calls == 1
            assert counting.nodes <= bound
            if m:
                counting = Counting(FULL64)
                consistency_proof(counting, m, n)
                assert counting.calls == 1
                assert counting.nodes <= bound


# -- published vectors -----------------------------------------------------------------------

# Test data (not code) of transparency-dev/merkle, proof/verify_test.go at commit
# 02194e9afb6c1d95b5381350007963aa70fff472 (from Certificate Transparency's test suite):
# eight entries, the roots of their prefixes, and proofs. That file numbers leaves from 1;
# the indices here are 0-based.
CT_HEX = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657"]
CT_HEX.append("606162636465666768696a6b6c6d6e6f")
CT_ENTRIES = [bytes.fromhex(h) for h in CT_HEX]
CT_ROOTS = [
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]
H_96A2 = "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"
H_5F08 = "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"
H_6B47 = "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
H_BC1A = "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
H_CA85 = "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"
H_0EBC = "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"
H_B086 = "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"
CT_INCLUSION = [  # (index, size, proof)
    (0, 8, [H_96A2, H_5F08, H_6B47]),
    (5, 8, [H_BC1A, H_CA85, CT_ROOTS[3]]),
    (2, 3, [CT_ROOTS[1]]),
    (1, 5, [CT_ROOTS[0], H_5F08, H_BC1A]),
]
CT_CONSISTENCY = [  # (first, second, proof)
    (1, 8, [H_96A2, H_5F08, H_6B47]),
    (6, 8, [H_0EBC, H_CA85, CT_ROOTS[3]]),
    (2, 5, [H_5F08, H_BC1A]),
    (6, 7, [H_0EBC, H_B086, CT_ROOTS[3]]),
]
CT_STORE = grown(CT_ENTRIES)


def test_published_roots() -> None:
    for n, expected in enumerate(CT_ROOTS, start=1):
        assert merkle.root(CT_STORE, n).hex() == expected
    assert Reference(CT_ENTRIES).mth(0, 8).hex() == CT_ROOTS[7]  # the reference agrees too


@pytest.mark.parametrize(("index", "size", "proof"), CT_INCLUSION)
def test_published_inclusion_proofs(index: int, size: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in proof]
    assert inclusion_proof(CT_STORE, index, size) == expected
    leaf = merkle.leaf_hash(CT_ENTRIES[index])
    assert verify_inclusion(leaf, index, size, expected, bytes.fromhex(CT_ROOTS[size - 1]))


@pytest.mark.parametrize(("first", "second", "proof"), CT_CONSISTENCY)
def test_published_consistency_proofs(first: int, second: int, proof: list[str]) -> None:
    expected = [bytes.fromhex(h) for h in proof]
    assert consistency_proof(CT_STORE, first, second) == expected
    roots = bytes.fromhex(CT_ROOTS[first - 1]), bytes.fromhex(CT_ROOTS[second - 1])
    assert verify_consistency(first, second, *roots, expected)


# -- the verifiers reject every alteration --------------------------------------------------


def altered_lists(proof: list[bytes], *extra: bytes) -> list[list[bytes]]:
    """Each hash flipped, truncated, extended and prefixed (with each of `extra`), and a
    hash cut to 31 bytes."""
    out = [[*proof[:i], flipped(p), *proof[i + 1 :]] for i, p in enumerate(proof)]
    if proof:
        out += [proof[:-1], proof[1:], [*proof[:-1], proof[-1][:31]]]
    for hash_ in extra:
        out += [[*proof, hash_], [hash_, *proof]]
    return out


@pytest.mark.parametrize("n", range(1, 65))
def test_inclusion_verifier_rejects_altered_proofs(n: int) -> None:
    root_n = REF64.mth(0, n)
    for m in range(n):
        proof, leaf = REF64.path(m, 0, n), LEAVES64[m]
        assert verify_inclusion(leaf, m, n, proof, root_n)
        assert not verify_inclusion(flipped(leaf), m, n, proof, root_n)
        assert not verify_inclusion(leaf, m, n, proof, flipped(root_n))
        assert not verify_inclusion(leaf, m, n, proof, EMPTY_ROOT)
        for bad in altered_lists(proof, root_n, leaf, EMPTY_ROOT):
            assert not verify_inclusion(leaf, m, n, bad, root_n), (m, n, bad)
        for other in [-1, *range(n + 2)]:  # every other position, and past the end
            if other != m:
                assert not verify_inclusion(leaf, other, n, proof, root_n), (m, n, other)
        # A proof does not authenticate the tree size (the signed tree head does); it must
        # fail for every size whose path for this leaf has another length, 2n and n/2 among
        # them, and for every size the leaf is outside.
        for size in range(-1, 2 * n + 2):
            if size != n and (m >= size or len(SHAPES.path(m, 0, size)) != len(proof)):
                assert not verify_inclusion(leaf, m, size, proof, root_n), (m, n, size)


def test_a_proof_says_nothing_of_the_size_the_tree_head_must() -> None:
    """RFC 9162's verifier takes the size as given: leaf 0's path in a tree of 4 also
    verifies as a tree of 3, against the root of 4. So a tree head binds size and root
    under one signature, and the size is taken from it, never from the proof's sender."""
    proof = REF64.path(0, 0, 4)
    assert verify_inclusion(LEAVES64[0], 0, 3, proof, REF64.mth(0, 4))


@pytest.mark.parametrize("n", range(2, 65))
def test_consistency_verifier_rejects_altered_proofs(n: int) -> None:
    root_n = REF64.mth(0, n)
    for m in range(1, n):
        proof, root_m = REF64.proof(m, n), REF64.mth(0, m)
        assert verify_consistency(m, n, root_m, root_n, proof)
        assert not verify_consistency(m, n, flipped(root_m), root_n, proof)
        assert not verify_consistency(m, n, root_m, flipped(root_n), proof)
        assert not verify_consistency(m, n, root_n, root_m, proof)
        assert not verify_consistency(m, n, root_m, root_n, [])
        assert not verify_consistency(n, m, root_n, root_m, proof)  # m > n
        for bad in altered_lists(proof, root_m, root_n, proof[0]):
            assert not verify_consistency(m, n, root_m, root_n, bad), (m, n, bad)
        for other in range(-1, n + 2):  # every other first size
            if other != m:
                assert not verify_consistency(other, n, root_m, root_n, proof), (m, n, other)
        for size in range(-1, 2 * n + 2):  # as with inclusion: sizes that change the length
            if size != n and (size <= m or len(SHAPES.proof(m, size)) != len(proof)):
                assert not verify_consistency(m, size, root_m, root_n, proof), (m, n, size)


def test_trivial_and_empty_trees() -> None:
    root_5, root_6 = REF64.mth(0, 5), REF64.mth(0, 6)
    # the empty tree holds no leaf: no inclusion proof, and none is made
    assert not verify_inclusion(LEAVES64[0], 0, 0, [], EMPTY_ROOT)
    with pytest.raises(ValueError, match="no leaf 0 in a tree of 0"):
        inclusion_proof(FULL64, 0, 0)
    # a tree of one: its root is its leaf hash, the proof empty
    assert verify_inclusion(LEAVES64[0], 0, 1, [], LEAVES64[0])
    assert not verify_inclusion(LEAVES64[0], 0, 1, [LEAVES64[0]], LEAVES64[0])
    # a tree head is consistent with itself: empty proof, equal hashes (sizes 0 too)
    assert verify_consistency(5, 5, root_5, root_5, [])
    assert verify_consistency(0, 0, EMPTY_ROOT, EMPTY_ROOT, [])
    assert not verify_consistency(5, 5, root_5, root_6, [])
    assert not verify_consistency(5, 5, root_5, root_5, [root_5])
    # the empty tree is a prefix of every tree: empty proof, and its hash is MTH({})
    assert verify_consistency(0, 5, EMPTY_ROOT, root_5, [])
    assert not verify_consistency(0, 5, root_5, root_5, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, root_5, [root_5])
    # a hash that is not 32 bytes is no SHA-256 hash, even where nothing is hashed
    assert not verify_inclusion(b"x", 0, 1, [], b"x")
    assert not verify_consistency(2, 2, b"x", b"x", [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, b"x", [])
    # no tree is a prefix of a smaller one, and sizes are never negative
    assert not verify_consistency(6, 5, root_6, root_5, [])
    assert not verify_consistency(-1, 5, EMPTY_ROOT, root_5, [])
    with pytest.raises(ValueError, match="cannot be a prefix"):
        consistency_proof(FULL64, 6, 5)
    with pytest.raises(ValueError, match="never negative"):
        consistency_proof(FULL64, -1, 5)
    with pytest.raises(ValueError, match="never negative"):
        merkle.root(FULL64, -1)


# -- the store and the appender ------------------------------------------------------------


def test_appending_stores_exactly_the_complete_subtrees() -> None:
    """Leaf by leaf to 300: each append returns the nodes that just became complete, with
    the reference's hash, and nothing else; 2n - popcount(n) nodes for n leaves; the
    frontier holds popcount(n) hashes and gives the root."""
    values = entries(300, seed=3)
    ref, frontier, stored = Reference(values), Frontier(), set()
    for n, value in enumerate(values, start=1):
        made = frontier.append([sha256(b"\x00" + value)])
        complete = {(lvl, (n >> lvl) - 1) for lvl in range(n.bit_length()) if n % (1 << lvl) == 0}
        assert {(lvl, idx) for lvl, idx, _ in made} == complete
        for level, index, digest in made:
            assert digest == ref.mth(index << level, (index + 1) << level)
        stored |= complete
        assert len(stored) == 2 * n - n.bit_count()
        assert frontier.size == n
        assert len(frontier.hashes) == n.bit_count()
        assert frontier.root() == ref.mth(0, n)


def test_batches_and_restarts_give_the_same_tree() -> None:
    """One leaf at a time, uneven batches, and a frontier reloaded from the store at every
    size before going on: the same nodes and roots."""
    leaves = [sha256(b"\x00" + v) for v in entries(200, seed=5)]
    one_by_one = MemoryNodeStore()
    frontier = Frontier()
    for leaf in leaves:
        one_by_one.put_many(frontier.append([leaf]))
    assert grown_from(leaves, MemoryNodeStore()).nodes == one_by_one.nodes
    for size in range(len(leaves) + 1):
        partial = MemoryNodeStore()
        start = Frontier()
        partial.put_many(start.append(leaves[:size]))
        resumed = Frontier.load(partial, size)
        assert resumed.hashes == start.hashes
        assert resumed.root() == merkle.root(one_by_one, size)
        partial.put_many(resumed.append(leaves[size:]))
        assert partial.nodes == one_by_one.nodes
        assert resumed.root() == frontier.root()


def grown_from(leaves: list[bytes], store: MemoryNodeStore) -> MemoryNodeStore:
    frontier, rng, at = Frontier(), random.Random(1), 0
    while at < len(leaves):
        step = rng.choice([1, 2, 3, 7, 64])
        store.put_many(frontier.append(leaves[at : at + step]))
        at += step
    return store


def test_store_and_frontier_refuse_what_cannot_be() -> None:
    store = MemoryNodeStore()
    store.put_many([(0, 0, b"a" * 32)])
    store.put_many([(0, 0, b"a" * 32)])  # the same node again: no change
    with pytest.raises(ValueError, match=r"node \(0, 0\) is stored with another hash"):
        store.put_many([(0, 0, b"b" * 32)])
    assert store.nodes == {(0, 0): b"a" * 32}
    with pytest.raises(MissingNode, match=r"no node \(0, 1\)"):
        inclusion_proof(store, 0, 2)  # a proof for a tree the store does not hold yet
    with pytest.raises(MissingNode):
        Frontier.load(store, 2)
    with pytest.raises(ValueError, match="a tree of 3 has 2 frontier hashes"):
        Frontier(3, [b"a" * 32])
    with pytest.raises(ValueError, match="never negative"):
        Frontier(-1)
    frontier = Frontier()
    frontier.append([LEAVES64[0]])
    with pytest.raises(ValueError, match="a leaf hash is 32 bytes, not 3"):
        frontier.append([LEAVES64[1], b"abc"])  # refused whole: the good leaf is not added
    assert (frontier.size, frontier.hashes) == (1, [LEAVES64[0]])
    assert frontier.append([LEAVES64[1]]) == [(0, 1, LEAVES64[1]), (1, 0, REF64.mth(0, 2))]


@pytest.mark.parametrize("n", [0, 1, 2, 3, 64, 1023, 1024, 1025, 2049, 3 * 1024 + 5])
def test_root_of_a_whole_walk_is_the_references(n: int) -> None:
    """The verifier's bulk root (whole chunks hashed level by level) against the RFC."""
    values = entries(n, seed=n)
    size, computed = merkle.root_of(merkle.leaf_hash(v) for v in values)
    assert (size, computed) == (n, Reference(values).mth(0, n))
