"""Secrets the service handles: password hashes (scrypt), API keys and session tokens (stored as hashes only).

Keys and tokens are 256-bit random strings, so a plain SHA-256 suffices for them; passwords get salted scrypt.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "alk_"


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=2**14, r=8, p=1, dklen=32)
    return f"scrypt$16384$8$1${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, digest = stored.split("$")
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got.hex(), digest)


def new_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


def sign(body: bytes, secret: str, timestamp: int) -> str:
    """Webhook signature: HMAC-SHA256 over ``"{timestamp}." + body``, as Stripe-style receivers verify it."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()
