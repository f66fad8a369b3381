"""The hash chain that makes the audit trail tamper-evident.

Each sealed event carries ``seq`` (0, 1, 2, ...), ``prev_hash`` (the previous event's ``hash``, 64 zeros for the
first) and ``hash`` = SHA-256 (hex) of the canonical JSON of the event without ``hash``. Changing, reordering,
removing or inserting an event in the middle breaks the chain, and :func:`verify` names the first event that does
not fit.

Limits (a chain without a secret or an outside anchor cannot do better):

* Removing events from the **end** leaves a valid, shorter chain: not detectable by the chain alone. Anchor the
  latest hash elsewhere (for example the ingest job can record ``seq``/``hash`` of its event in the bronze table's
  properties, or a monitoring system can keep it) and compare with :attr:`VerifyResult.last_hash`.
* Anyone who can write the trail can recompute every hash after a change (SHA-256 has no key). Append-only storage
  (``delta.appendOnly=true``, file permissions) is what stops rewriting; the chain makes it visible.

Keyed trails (``audit: {key: NAME}`` in the policy) close the second gap: each event also names the key
(``seal_key``, ``seal_key_version``) and carries ``mac`` = HMAC-SHA256 (hex) under that key version over the canonical
JSON of the event without ``hash`` and ``mac``. ``hash`` is then computed as before, over everything but itself
(``mac`` included), so the plain chain still verifies without the key. Rewriting an event and recomputing the plain
hashes leaves its ``mac`` stale; stripping the seal fields from every event is caught when the verifier is told
which key to expect (:func:`verify` with ``expect_key``): once a trail is keyed, every later event must be too.
"""

from __future__ import annotations

import hashlib
import hmac as std_hmac
import json
from collections.abc import Collection, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

GENESIS_HASH = "0" * 64
SEAL_FIELDS = ("seal_key", "seal_key_version", "mac")
CHAIN_FIELDS = ("seq", "prev_hash", "hash", *SEAL_FIELDS)

#: (key name, version) -> raw key bytes, for sealing and verifying keyed trails.
SealKeys = Mapping[tuple[str, int], bytes]


def canonical_json(obj: Any) -> str:
    """The one JSON text an object hashes as: sorted keys, no spaces, UTF-8 characters kept, NaN/Infinity refused."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def event_hash(event: dict) -> str:
    """SHA-256 hex over the canonical JSON of ``event`` without its ``hash`` field."""
    body = {k: v for k, v in event.items() if k != "hash"}
    return hashlib.sha256(canonical_json(body).encode("utf-8")).hexdigest()


def event_mac(event: dict, key: bytes) -> str:
    """HMAC-SHA256 hex under ``key`` over the canonical JSON of ``event`` without ``hash`` and ``mac``."""
    body = {k: v for k, v in event.items() if k not in ("hash", "mac")}
    return std_hmac.new(key, canonical_json(body).encode("utf-8"), hashlib.sha256).hexdigest()


def seal(event: dict, prev: dict | None, key: Any = None) -> dict:
    """Return a copy of ``event`` linked after ``prev`` (the last sealed event, or None for the first).

    Adds ``seq`` (``prev["seq"] + 1`` or 0), ``prev_hash`` (``prev["hash"]`` or 64 zeros) and ``hash``. With ``key``
    (a :class:`~lakehouse_phi.keys.SecretKey`: ``name``, ``version``, ``material``) also ``seal_key``,
    ``seal_key_version`` and ``mac`` (see the module docstring).

    Raises:
        ValueError: ``event`` is already sealed, or ``prev`` is not a sealed event.
    """
    if any(k in event for k in CHAIN_FIELDS):
        raise ValueError("audit event is already sealed (has seq/prev_hash/hash); pass the unsealed event")
    if prev is None:
        seq, prev_hash = 0, GENESIS_HASH
    else:
        seq_prev, hash_prev = prev.get("seq"), prev.get("hash")
        if isinstance(seq_prev, bool) or not isinstance(seq_prev, int) or not isinstance(hash_prev, str):
            raise ValueError("previous audit event has no integer seq and hash; the trail is damaged - run "
                             "`lakehouse-phi audit verify` on it")
        seq, prev_hash = seq_prev + 1, hash_prev
    sealed = {**event, "seq": seq, "prev_hash": prev_hash}
    if key is not None:
        sealed["seal_key"], sealed["seal_key_version"] = key.name, int(key.version)
        sealed["mac"] = event_mac(sealed, key.material)
    sealed["hash"] = event_hash(sealed)
    return sealed


@dataclass(frozen=True)
class VerifyResult:
    """Outcome of :func:`verify`.

    Attributes:
        ok: the chain is intact.
        events: how many events were checked.
        first_bad: position (0-based, in stored order; equals the expected ``seq``) of the first event that does not
            fit, or None.
        event_id: that event's ``event_id`` (None when intact or unreadable).
        reason: why it does not fit, or ``"intact"``.
        seq: the ``seq`` that event records (may differ from ``first_bad`` when events were moved or removed).
        last_hash: the hash of the last event when intact (compare with an outside anchor to detect truncation).
        sealed: how many events carry a keyed seal whose ``mac`` was checked and matched.
        missing_key: ``NAME@VERSION`` of a seal key the trail uses but the verifier was not given (the chain itself
            is intact; its keyed seals could not be checked: the CLI exits 2).
    """

    ok: bool
    events: int
    first_bad: int | None
    event_id: str | None
    reason: str
    seq: int | None = None
    last_hash: str | None = None
    sealed: int = 0
    missing_key: str | None = field(default=None)

    def to_dict(self) -> dict:
        return asdict(self)


def _bad(events: list, i: int, reason: str) -> VerifyResult:
    ev = events[i] if isinstance(events[i], dict) else {}
    event_id = ev.get("event_id") if isinstance(ev.get("event_id"), str) else None
    seq = ev.get("seq") if isinstance(ev.get("seq"), int) and not isinstance(ev.get("seq"), bool) else None
    return VerifyResult(False, len(events), i, event_id, reason, seq)


def _self_problem(ev: Any) -> str | None:
    """Why an event cannot be checked or does not match its own hash, or None."""
    if not isinstance(ev, dict):
        return "not a JSON object"
    seq, stored = ev.get("seq"), ev.get("hash")
    if isinstance(seq, bool) or not isinstance(seq, int):
        return "no integer seq"
    if not isinstance(stored, str) or not isinstance(ev.get("prev_hash"), str):
        return "no hash/prev_hash"
    try:
        actual = event_hash(ev)
    except (TypeError, ValueError):
        return "content is not canonical JSON (NaN, infinity or a non-JSON type)"
    if actual != stored:
        return "content changed: the hash recomputed over the event does not match its stored hash"
    return None


def verify(events: list[dict], keys: SealKeys | None = None,
           expect_key: str | Collection[str] | None = None) -> VerifyResult:
    """Check the hash chain (:func:`verify_chain`), then every keyed seal.

    Args:
        events: the trail in stored order.
        keys: material of the seal keys, by (name, version); an event sealed under a key not given makes the
            result ``missing_key`` (unless something is already broken).
        expect_key: the key the policy seals with (``audit.key``), or the names given with ``--key`` (any of them).
            Then every event must be sealed, under that key: a trail stripped of its seals (and re-hashed) is
            tampered. Without ``expect_key``, events before the first sealed one may be unsealed (a trail keyed
            from some point on), never after it.

    A seal is checked only where its key is known: an event with a stale ``mac`` (changed and re-hashed without the
    key) or an unsealed event after a sealed one is named as the first bad event, whichever comes first together
    with the chain's own finding.
    """
    expected = _expected(expect_key)
    result = verify_chain(events)
    limit = result.first_bad if result.first_bad is not None else len(events)
    keys = {} if keys is None else keys
    seen_seal = False
    first_unsealed: int | None = None
    sealed = 0
    missing: str | None = None
    for i in range(limit):
        ev = events[i]
        name, version, mac = ev.get("seal_key"), ev.get("seal_key_version"), ev.get("mac")
        if name is None and version is None and mac is None:
            if seen_seal:
                return _bad(events, i, "unsealed event after sealed ones: its seal was stripped (and the chain "
                                       "re-hashed), or it was forged without the trail key")
            first_unsealed = i if first_unsealed is None else first_unsealed
            continue
        if expected and first_unsealed is not None:
            return _bad(events, first_unsealed, f"unsealed event in a trail sealed with key "
                                                f"'{'/'.join(expected)}': every event must be sealed (a trail "
                                                "begun before audit.key was set: start a new trail for the keyed "
                                                "events)")
        seen_seal = True
        problem, known = _seal_problem(ev, name, version, mac, keys, expected)
        if problem is not None:
            return _bad(events, i, problem)
        if known:
            sealed += 1
        else:
            missing = missing or f"{name}@{version}"
    if not result.ok:
        return result
    if expected and events and not seen_seal:
        return _bad(events, 0, f"no event is sealed, but the trail is sealed with key '{'/'.join(expected)}': the "
                               "seals were stripped and the chain re-hashed, or the trail is not this policy's")
    if missing is not None:
        return VerifyResult(False, len(events), None, None, f"keyed trail checked without its key: events are sealed "
                            f"under {missing}, which was not given (the chain itself is intact); pass --policy or "
                            "--key", None, result.last_hash, sealed, missing)
    return VerifyResult(True, len(events), None, None, "intact", None, result.last_hash, sealed)


def _expected(expect_key: str | Collection[str] | None) -> list[str]:
    if expect_key is None:
        return []
    return [expect_key] if isinstance(expect_key, str) else sorted(set(expect_key))


def _seal_problem(ev: dict, name: Any, version: Any, mac: Any, keys: SealKeys,
                  expected: list[str]) -> tuple[str | None, bool]:
    """(what is wrong with the seal of ``ev``, or ``None``; whether its key was given and so the MAC checked)."""
    if not (isinstance(name, str) and isinstance(version, int) and not isinstance(version, bool)
            and isinstance(mac, str)):
        return "malformed seal: seal_key, seal_key_version and mac must all be present", False
    if expected and name not in expected:
        return f"sealed under key '{name}', but the trail is sealed with '{'/'.join(expected)}'", False
    material = keys.get((name, version))
    if material is None:
        return None, False
    if not std_hmac.compare_digest(event_mac(ev, material), mac):
        return (f"seal does not match (key '{name}' version {version}): the event was changed and re-hashed "
                "without the trail key, or this is not the key it was sealed with"), True
    return None, True


def verify_chain(events: list[dict]) -> VerifyResult:
    """Check a trail in stored order and name the first event whose content, order or presence was tampered with.

    At position ``i`` the event must match its own hash, record ``seq == i`` and link (``prev_hash``) to the hash of
    the event at ``i - 1``. When it does not, the culprit is named:

    * content edited -> that event (its hash no longer matches);
    * two events swapped -> the first one out of place;
    * a middle event deleted -> the event after the gap;
    * a forged event inserted (even with a correct hash, seq and prev_hash) -> the forged event, found because the
      next genuine event links past it to an earlier one;
    * an event edited and re-hashed, or replaced -> that event (the next one recorded a different hash for it);
    * an event duplicated -> the second copy.

    Removing events from the end is not detectable by a chain alone (see the module docstring).
    """
    seen: dict[str, int] = {}  # hash -> position, for events that passed
    prev_hash = GENESIS_HASH
    for i, ev in enumerate(events):
        problem = _self_problem(ev)
        if problem:
            return _bad(events, i, problem)
        seq, link, own = ev["seq"], ev["prev_hash"], ev["hash"]
        if own in seen:
            return _bad(events, i, f"duplicate of the event at position {seen[own]}")
        if seq != i or link != prev_hash:
            j = seen.get(link)
            if j is not None and j < i - 1 and seq == j + 1:
                if events[j + 1].get("seq") == seq:
                    return _bad(events, j + 1, f"fork: two events record seq {seq} after the same event "
                                               "(concurrent writers, or one of them forged)")
                return _bad(events, j + 1, f"not part of the chain: the event recorded as seq {seq} at position {i} "
                                           f"links to position {j}, skipping this one (inserted or forged)")
            if seq == i:  # right place, wrong link: the previous event is not the one this event was chained to
                if i == 0:
                    return _bad(events, 0, "the first event must have prev_hash of 64 zeros")
                return _bad(events, i - 1, f"changed and re-hashed, or replaced: the next event (seq {i}) recorded "
                                           "a different hash for it")
            if seq > i and link not in seen and not any(
                    isinstance(e, dict) and e.get("hash") == link for e in events[i + 1:]):
                missing = "1 event" if seq == i + 1 else f"{seq - i} events"
                return _bad(events, i, f"{missing} missing before this one: expected seq {i}, found seq {seq} "
                                       "(deleted)")
            return _bad(events, i, f"out of order: expected seq {i} here, found seq {seq}")
        seen[own] = i
        prev_hash = own
    return VerifyResult(True, len(events), None, None, "intact", None, prev_hash if events else None)
