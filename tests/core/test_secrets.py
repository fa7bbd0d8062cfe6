"""Random tokens, their stored digests, and password hashing (``core.secrets``)."""

from __future__ import annotations

import hashlib
import re

import pytest
from argon2 import PasswordHasher

from lmsauth.core import secrets

CONFUSABLE = set("015bdgijloqspSIO")


def test_canvas_slug_alphabet() -> None:
    alphabet = secrets.CANVAS_SLUG_ALPHABET
    assert alphabet == "2346789acefhkmnrtuvwxyzABCDEFGHJKLMNPQRTUVWXYZ"
    assert len(alphabet) == len(set(alphabet)) == 46
    assert not CONFUSABLE & set(alphabet)


@pytest.mark.parametrize("length", [1, 5, 64, 100])
def test_canvas_slug_length_and_characters(length: int) -> None:
    slug = secrets.canvas_slug(length)
    assert len(slug) == length
    assert set(slug) <= set(secrets.CANVAS_SLUG_ALPHABET)


def test_canvas_slug_default_is_64_and_random() -> None:
    slugs = {secrets.canvas_slug() for _ in range(200)}
    assert len(slugs) == 200
    assert all(len(slug) == 64 for slug in slugs)
    # Every character of the alphabet turns up: the generator draws from all 46.
    assert set("".join(slugs)) == set(secrets.CANVAS_SLUG_ALPHABET)


def test_canvas_slug_letters_are_equally_likely(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each byte value below 230 maps to one letter, five values per letter; the 26 values
    from 230 up are dropped (taking their remainder would favour the first 26 letters)."""
    monkeypatch.setattr(secrets.os, "urandom", lambda n: bytes(range(256)) * (n // 256 + 1))
    slug = secrets.canvas_slug(230)
    counts = {letter: slug.count(letter) for letter in secrets.CANVAS_SLUG_ALPHABET}
    assert set(counts.values()) == {5}


def test_hex_token_is_canvas_code_format() -> None:
    code = secrets.hex_token()
    assert re.fullmatch(r"[0-9a-f]{128}", code)
    assert secrets.hex_token() != code
    assert len(secrets.hex_token(16)) == 32


def test_url_token() -> None:
    token = secrets.url_token(32)
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", token)


def test_digest_is_hex_sha256() -> None:
    assert secrets.digest("abc") == hashlib.sha256(b"abc").hexdigest()
    assert secrets.digest("é") == hashlib.sha256("é".encode()).hexdigest()
    assert secrets.digest("\udcff")  # a lone surrogate (from a bad header) still digests


def test_same() -> None:
    assert secrets.same("abc", "abc")
    assert not secrets.same("abc", "abd")
    assert not secrets.same("abc", "ab")
    assert secrets.same("", "")
    assert secrets.same("é", "é")


@pytest.mark.real_password_hashing
def test_password_hash_is_argon2id_and_salted() -> None:
    # Long enough that it cannot turn up in the base64 salt or digest by chance (a two-letter
    # password did, about once in forty runs).
    password = "correct horse battery staple"
    first, second = secrets.hash_password(password), secrets.hash_password(password)
    assert first.startswith("$argon2id$")
    assert not PasswordHasher().check_needs_rehash(first)  # the library's recommended cost
    assert first != second
    assert password not in first and password.encode().hex() not in first
    assert secrets.verify_password(first, password)


def test_verify_password() -> None:
    # A hash records its own cost parameters; a cheap one keeps this test fast.
    stored = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash("correct horse")
    assert secrets.verify_password(stored, "correct horse")
    assert not secrets.verify_password(stored, "correct horse ")
    assert not secrets.verify_password(stored, "")
    assert not secrets.verify_password(stored, "Correct horse")


def test_verify_password_unknown_user_and_garbage_hash() -> None:
    assert not secrets.verify_password(None, "anything")
    assert not secrets.verify_password("", "anything")
    assert not secrets.verify_password("not-a-hash", "anything")
    assert not secrets.verify_password("$argon2id$v=19$broken", "anything")
