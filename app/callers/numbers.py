"""Callers' phone numbers: normalised to E.164, sealed at rest, erasable (R5, R6, S3).

Each call's number is encrypted (AES-256-GCM) under a data key of its own; that key is
stored wrapped (AES-256-GCM) under a key derived from CALLGUARD_NUMBER_KEY. A keyed hash
(HMAC-SHA256 under another derived key) of the E.164 number finds a person's calls for
subject access without decrypting anything. Erasing the wrapped key and the hash makes
the number unrecoverable, even with CALLGUARD_NUMBER_KEY. A database dump alone reveals
no number: every key is derived from the secret, which is never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.storage.models import Call

# What platforms put as the caller's number when it was withheld or there is none: the
# words, and the numbers whose keypad letters spell them (ANONYMOUS, RESTRICTED, UNKNOWN,
# UNAVAILABLE, BLOCKED). They name nobody, so they never match anybody.
WITHHELD_WORDS = frozenset({"", "anonymous", "restricted", "unknown", "unavailable", "blocked"})
WITHHELD_NUMBERS = frozenset({"+266696687", "+7378742833", "+8656696", "+86282452253", "+2562533"})

_NONCE = 12


def normalise(raw: str | None, region: str) -> str | None:
    """E.164 for a number a person could have (`07700 900123` with region GB and
    `+447700900123` are the same); None for withheld, empty or unparseable values."""
    text = (raw or "").strip()
    if text.lower() in WITHHELD_WORDS:
        return None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return None if e164 in WITHHELD_NUMBERS else e164


@dataclass(frozen=True)
class Sealed:
    ciphertext: bytes
    wrapped_key: bytes
    key_id: str
    lookup_hash: str


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(
        secret.encode("utf-8")
    )


def _seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    nonce = os.urandom(_NONCE)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def _open(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    return AESGCM(key).decrypt(sealed[:_NONCE], sealed[_NONCE:], aad)


class NumberVault:
    """The keys derived from one CALLGUARD_NUMBER_KEY. The call SID is bound into both
    ciphertexts (associated data), so a sealed number cannot be moved to another call."""

    def __init__(self, secret: str) -> None:
        self._wrap_key = _derive(secret, b"callguard/number-wrap/v1")
        self._hash_key = _derive(secret, b"callguard/number-lookup/v1")
        # Names the secret without revealing it: which rows a rekey still has to do.
        self.key_id = _derive(secret, b"callguard/number-key-id/v1").hex()[:16]

    def lookup_hash(self, e164: str) -> str:
        return hmac.new(self._hash_key, e164.encode("utf-8"), hashlib.sha256).hexdigest()

    def seal(self, call_sid: str, e164: str) -> Sealed:
        data_key = AESGCM.generate_key(bit_length=256)
        aad = call_sid.encode("utf-8")
        return Sealed(
            ciphertext=_seal(data_key, e164.encode("utf-8"), aad),
            wrapped_key=_seal(self._wrap_key, data_key, aad),
            key_id=self.key_id,
            lookup_hash=self.lookup_hash(e164),
        )

    def data_key(self, call: Call) -> bytes | None:
        """The call's unwrapped data key; None once erased or under another secret."""
        if call.caller_number_wrapped_key is None or call.caller_number_key_id != self.key_id:
            return None
        try:
            return _open(self._wrap_key, call.caller_number_wrapped_key, call.call_sid.encode())
        except InvalidTag:
            return None

    def reveal(self, call: Call) -> str | None:
        data_key = self.data_key(call)
        if data_key is None or call.caller_number_ciphertext is None:
            return None
        return _open(data_key, call.caller_number_ciphertext, call.call_sid.encode()).decode()

    def adopt(self, call: Call, old: NumberVault) -> bool:
        """Key rotation: re-wrap the call's data key and recompute its hash under this
        secret. False when the row is not sealed under `old` (done, erased, or another)."""
        data_key = old.data_key(call)
        number = old.reveal(call)
        if data_key is None or number is None:
            return False
        call.caller_number_wrapped_key = _seal(self._wrap_key, data_key, call.call_sid.encode())
        call.caller_number_key_id = self.key_id
        call.caller_number_hash = self.lookup_hash(number)
        return True


@lru_cache(maxsize=4)
def vault(secret: str) -> NumberVault:
    return NumberVault(secret)


def sealed_columns(call_sid: str, raw: str | None, secret: str, region: str) -> dict[str, Any]:
    """The call row's columns holding the caller's number sealed; none for a withheld one."""
    e164 = normalise(raw, region)
    if e164 is None:
        return {}
    sealed = vault(secret).seal(call_sid, e164)
    return {
        "caller_number_ciphertext": sealed.ciphertext,
        "caller_number_wrapped_key": sealed.wrapped_key,
        "caller_number_key_id": sealed.key_id,
        "caller_number_hash": sealed.lookup_hash,
    }


def protect_caller(call: Call, raw: str | None, secret: str, region: str) -> None:
    """Store the caller's number sealed; a withheld number stores nothing."""
    if call.caller_number_wrapped_key is not None or call.number_erased_at is not None:
        return
    for column, value in sealed_columns(call.call_sid, raw, secret, region).items():
        setattr(call, column, value)
