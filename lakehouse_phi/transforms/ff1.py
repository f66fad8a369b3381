"""NIST SP 800-38G FF1 format-preserving encryption (AES), written from the specification.

No maintained Python FF1 library exists, so this module is hand-written and tested against every published
sample of SP 800-38G ("FF1samples.pdf", samples 1-9: AES-128/192/256, radix 10 and 36) plus round trips.

Two paths compute the same function:

* :meth:`FF1.encrypt` / :meth:`FF1.decrypt` follow Algorithms 7 and 8 step by step (any length, radix 2..36).
* :meth:`FF1.encrypt_many` batches numeral strings of the same length: the CBC-MAC of ``P`` and of the constant
  leading blocks of ``Q`` is computed once per length, and each Feistel round encrypts the one varying block of
  every value in a single AES-ECB call. When ``radix ** v <= 2 ** 32`` (radix 10: up to 18 numerals; SSNs,
  phone and card numbers) the halves live in numpy ``uint64`` arrays and a round is a handful of array
  operations (:meth:`FF1.rounds_u64`); up to ``b <= 12`` (radix 10: 57 numerals) they are Python ints; longer
  inputs take the step-by-step path. Tests check all paths agree.

Numerals are the characters ``0-9a-z`` (the first ``radix`` of them), as in the NIST samples. Minimum length is
the SP 800-38G Rev. 1 domain rule ``radix ** n >= 1_000_000`` (six decimal digits). Error messages state lengths
only, never the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from numpy.typing import NDArray

ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyz"
MIN_DOMAIN = 1_000_000
MAX_LEN = 2**32 - 1
_ROUNDS = 10
_BLOCK = 16


def _str_radix(x: int, radix: int, m: int) -> str:
    """STR^m_radix(x): ``m`` numerals, most significant first."""
    if radix == 10:
        return str(x).zfill(m)
    out = []
    for _ in range(m):
        x, r = divmod(x, radix)
        out.append(ALPHABET[r])
    return "".join(reversed(out))


class FF1:
    """FF1 bound to one AES key (16, 24 or 32 bytes) and one radix; the AES key schedule is built once."""

    def __init__(self, key: bytes, radix: int = 10) -> None:
        if len(key) not in (16, 24, 32):
            raise ValueError(f"FF1 needs an AES key of 16, 24 or 32 bytes, got {len(key)} bytes")
        if not 2 <= radix <= len(ALPHABET):
            raise ValueError(f"FF1 radix must be between 2 and {len(ALPHABET)}, got {radix}")
        self.radix = radix
        self._ecb = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
        self._prefix_cache: dict[tuple[int, bytes], tuple[int, int, int, int, int, int]] = {}

    def __repr__(self) -> str:  # never the key
        return f"FF1(radix={self.radix})"

    # ------------------------------------------------------------------------------------------- primitives
    def _ciph(self, block: bytes) -> bytes:
        return self._ecb.update(block)

    def _prf(self, x: bytes) -> bytes:
        """CBC-MAC with a zero IV: the last ciphertext block."""
        y = bytes(_BLOCK)
        for j in range(0, len(x), _BLOCK):
            y = self._ciph((int.from_bytes(y, "big") ^ int.from_bytes(x[j:j + _BLOCK], "big")).to_bytes(_BLOCK, "big"))
        return y

    def _check(self, n: int) -> None:
        if self.radix**n < MIN_DOMAIN or n > MAX_LEN:
            raise ValueError(f"FF1 input of {n} numerals is outside the domain (radix {self.radix} needs "
                             f"radix**n >= {MIN_DOMAIN})")

    def _params(self, n: int, tweak: bytes) -> tuple[int, int, int, int, bytes]:
        """Steps 1-5: u, v, b, d and P."""
        u = n // 2
        v = n - u
        b = ((self.radix**v - 1).bit_length() + 7) // 8  # ceil(ceil(v * log2(radix)) / 8)
        d = 4 * ((b + 3) // 4) + 4
        p = (bytes([1, 2, 1]) + self.radix.to_bytes(3, "big") + bytes([10, u % 256]) + n.to_bytes(4, "big")
             + len(tweak).to_bytes(4, "big"))
        return u, v, b, d, p

    def _y(self, p: bytes, tweak: bytes, i: int, num: int, b: int, d: int) -> int:
        """Steps 6.i-6.iv: y = NUM(S) for round ``i`` and the numeral half ``num``."""
        q = tweak + bytes((-len(tweak) - b - 1) % _BLOCK) + bytes([i]) + num.to_bytes(b, "big")
        r = self._prf(p + q)
        s = r
        for j in range(1, (d + _BLOCK - 1) // _BLOCK):
            s += self._ciph((int.from_bytes(r, "big") ^ j).to_bytes(_BLOCK, "big"))
        return int.from_bytes(s[:d], "big")

    def _num(self, x: str) -> int:
        return int(x, self.radix) if x else 0

    # -------------------------------------------------------------------------- Algorithms 7 and 8 (scalar)
    def encrypt(self, x: str, tweak: bytes = b"") -> str:
        """FF1.Encrypt(K, T, X) for one numeral string."""
        n = len(x)
        self._check(n)
        u, v, b, d, p = self._params(n, tweak)
        a, bb = self._num(x[:u]), self._num(x[u:])
        for i in range(_ROUNDS):
            m = u if i % 2 == 0 else v
            c = (a + self._y(p, tweak, i, bb, b, d)) % self.radix**m
            a, bb = bb, c
        return _str_radix(a, self.radix, u) + _str_radix(bb, self.radix, v)

    def decrypt(self, x: str, tweak: bytes = b"") -> str:
        """FF1.Decrypt(K, T, Y) for one numeral string."""
        n = len(x)
        self._check(n)
        u, v, b, d, p = self._params(n, tweak)
        a, bb = self._num(x[:u]), self._num(x[u:])
        for i in reversed(range(_ROUNDS)):
            m = u if i % 2 == 0 else v
            c = (bb - self._y(p, tweak, i, a, b, d)) % self.radix**m
            bb, a = a, c
        return _str_radix(a, self.radix, u) + _str_radix(bb, self.radix, v)

    # -------------------------------------------------------------------------------------------- batched
    def _batch_prefix(self, n: int, tweak: bytes) -> tuple[int, int, int, int, int, int] | None:
        """For length ``n``: (u, v, b, d, state, const) where ``state`` is the CBC-MAC chaining value before the
        last block of P||Q and ``const`` the constant high bytes of that block; None when b > 12 (two-block S)."""
        key = (n, tweak)
        cached = self._prefix_cache.get(key)
        if cached is not None:
            return cached
        u, v, b, d, p = self._params(n, tweak)
        if b > 12:  # then d > 16, or [i] || NUM(B) spills over one block
            return None
        head = p + tweak + bytes((-len(tweak) - b - 1) % _BLOCK)  # P || T || 0^pad; its length is 15 - b (mod 16)
        full = len(head) - (_BLOCK - 1 - b)
        state = int.from_bytes(self._prf(head[:full]), "big")
        const = int.from_bytes(head[full:], "big") << (8 * (b + 1))
        entry = (u, v, b, d, state, const)
        self._prefix_cache[key] = entry
        return entry

    def _y_many(self, state: int, const: int, i: int, nums: list[int], b: int, d: int) -> list[int]:
        """Round ``i``'s y for every half in ``nums`` with one AES-ECB call over all their last blocks."""
        fixed = state ^ const ^ (i << (8 * b))
        blocks = b"".join((fixed ^ x).to_bytes(_BLOCK, "big") for x in nums)
        out = self._ecb.update(blocks)
        shift = 8 * (_BLOCK - d)
        frm = int.from_bytes
        return [frm(out[k:k + _BLOCK], "big") >> shift for k in range(0, len(out), _BLOCK)]

    def u64_ok(self, n: int) -> bool:
        """True when :meth:`rounds_u64` handles length ``n`` (both halves below 2**32, so b <= 4 and d = 8)."""
        return bool(self.radix ** (n - n // 2) <= 2**32)

    def rounds_u64(self, a: NDArray[Any], b: NDArray[Any], n: int, tweak: bytes = b"",
                   decrypt: bool = False) -> tuple[NDArray[Any], NDArray[Any]]:
        """The ten Feistel rounds over arrays of NUM_radix(A) and NUM_radix(B) (``uint64``) for length ``n``.

        Requires :meth:`u64_ok`. Returns the output halves as ``uint64`` arrays (``STR`` is the caller's job).
        """
        self._check(n)
        if not self.u64_ok(n):
            raise ValueError(f"FF1 rounds_u64 handles halves below 2**32; {n} numerals is too long")
        prefix = self._batch_prefix(n, tweak)
        assert prefix is not None  # u64_ok(n) means b <= 4
        u, v, bb_len, d, state, const = prefix
        assert d == 8 and bb_len <= 4
        mods = (np.uint64(self.radix**u), np.uint64(self.radix**v))
        a = np.asarray(a, dtype=np.uint64)
        b = np.asarray(b, dtype=np.uint64)
        blocks = np.empty((len(a), 2), dtype=">u8")
        order = reversed(range(_ROUNDS)) if decrypt else range(_ROUNDS)
        for i in order:
            fixed = state ^ const ^ (i << (8 * bb_len))
            blocks[:, 0] = fixed >> 64
            blocks[:, 1] = np.uint64(fixed & 0xFFFFFFFFFFFFFFFF) ^ (a if decrypt else b)
            r = np.frombuffer(self._ecb.update(blocks.tobytes()), dtype=">u8")
            mod = mods[i % 2]
            y = r[0::2].astype(np.uint64) % mod  # d = 8: the first 8 bytes of R
            if decrypt:
                a, b = (b + mod - y) % mod, a
            else:
                a, b = b, (a + y) % mod
        return a, b

    def encrypt_many(self, xs: Sequence[str], tweak: bytes = b"") -> list[str]:
        """:meth:`encrypt` of every string in ``xs`` (each within the domain), batched by length."""
        return self._many(xs, tweak, decrypt=False)

    def decrypt_many(self, xs: Sequence[str], tweak: bytes = b"") -> list[str]:
        """:meth:`decrypt` of every string in ``xs``, batched by length."""
        return self._many(xs, tweak, decrypt=True)

    def _many(self, xs: Sequence[str], tweak: bytes, decrypt: bool) -> list[str]:
        by_len: dict[int, list[int]] = {}
        for k, numerals in enumerate(xs):
            by_len.setdefault(len(numerals), []).append(k)
        out: list[str] = [""] * len(xs)
        for n, idx in by_len.items():
            self._check(n)
            pre = self._batch_prefix(n, tweak)
            if pre is None:
                one = self.decrypt if decrypt else self.encrypt
                for k in idx:
                    out[k] = one(xs[k], tweak)
                continue
            u, v, b, d, state, const = pre
            radix = self.radix
            if self.u64_ok(n):
                ha = np.fromiter((self._num(xs[k][:u]) for k in idx), dtype=np.uint64, count=len(idx))
                hb = np.fromiter((self._num(xs[k][u:]) for k in idx), dtype=np.uint64, count=len(idx))
                ra, rb = self.rounds_u64(ha, hb, n, tweak, decrypt)
                for k, left, right in zip(idx, ra.tolist(), rb.tolist()):
                    out[k] = _str_radix(left, radix, u) + _str_radix(right, radix, v)
                continue
            mod_u, mod_v = radix**u, radix**v
            a = [self._num(xs[k][:u]) for k in idx]
            bb = [self._num(xs[k][u:]) for k in idx]
            if not decrypt:
                for i in range(_ROUNDS):
                    mod = mod_u if i % 2 == 0 else mod_v
                    ys = self._y_many(state, const, i, bb, b, d)
                    a, bb = bb, [(x + y) % mod for x, y in zip(a, ys)]
            else:
                for i in reversed(range(_ROUNDS)):
                    mod = mod_u if i % 2 == 0 else mod_v
                    ys = self._y_many(state, const, i, a, b, d)
                    bb, a = a, [(x - y) % mod for x, y in zip(bb, ys)]
            if radix == 10:
                for k, x, y in zip(idx, a, bb):
                    out[k] = str(x).zfill(u) + str(y).zfill(v)
            else:
                for k, x, y in zip(idx, a, bb):
                    out[k] = _str_radix(x, radix, u) + _str_radix(y, radix, v)
        return out
