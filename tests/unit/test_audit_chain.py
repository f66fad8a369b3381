"""The hash chain: sealing, canonical JSON, and verify naming the first tampered event."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lakehouse_phi.audit import GENESIS_HASH, canonical_json, event_hash, new_event, seal, verify


def make_event(i: int) -> dict:
    return new_event(run_id=f"run-{i}", actor="etl@example.org", event="ingest", policy_name="clinic",
                     policy_sha256="ab" * 32, table="patients", rows_read=100 + i, rows_written=90 + i,
                     rows_quarantined=10, columns={"ssn": {"strategy": "hmac", "key_version": 2},
                                                   "notes": {"strategy": "scrub_text", "key_version": None}},
                     details={"quarantine_reasons": {"bad_date": 10}, "allow_insecure": False, "engine": "sail"})


def chain(n: int) -> list[dict]:
    out: list[dict] = []
    for i in range(n):
        out.append(seal(make_event(i), out[-1] if out else None))
    return out


def resealed(ev: dict, **changes) -> dict:
    """An attacker's edit that also recomputes the hash (SHA-256 has no key)."""
    ev = {**ev, **changes}
    ev["hash"] = event_hash(ev)
    return ev


def test_canonical_json_is_sorted_compact_utf8_and_refuses_nan():
    assert canonical_json({"b": 1, "a": [True, None, "é"]}) == '{"a":[true,null,"é"],"b":1}'
    with pytest.raises(ValueError):
        canonical_json({"x": float("nan")})


def test_event_hash_is_sha256_over_canonical_json_without_hash():
    # value computed independently with coreutils: printf '%s' '{"a":1,"b":[true,null,"é"],"seq":0}' | sha256sum
    ev = {"seq": 0, "b": [True, None, "é"], "a": 1, "hash": "ignored"}
    assert event_hash(ev) == "586df46d8117d05150787181eb68d1df0ab06623ec3e97591a7734126ed46628"


def test_seal_links_events():
    events = chain(3)
    assert [e["seq"] for e in events] == [0, 1, 2]
    assert events[0]["prev_hash"] == GENESIS_HASH == "0" * 64
    assert events[1]["prev_hash"] == events[0]["hash"] and events[2]["prev_hash"] == events[1]["hash"]
    body = {k: v for k, v in events[1].items() if k != "hash"}
    assert events[1]["hash"] == hashlib.sha256(canonical_json(body).encode()).hexdigest()


def test_seal_does_not_mutate_and_refuses_a_sealed_event():
    ev = make_event(0)
    before = copy.deepcopy(ev)
    sealed = seal(ev, None)
    assert ev == before
    with pytest.raises(ValueError, match="already sealed"):
        seal(sealed, None)
    with pytest.raises(ValueError, match="verify"):
        seal(make_event(1), {"seq": "zero"})


def test_intact_chain_verifies():
    events = chain(5)
    r = verify(events)
    assert r.ok and r.events == 5 and r.first_bad is None and r.last_hash == events[-1]["hash"]
    assert verify([]).ok and verify([]).events == 0


def test_survives_a_json_round_trip():
    events = [json.loads(json.dumps(e, indent=2)) for e in chain(4)]
    assert verify(events).ok


def test_edited_count_names_that_event():
    events = chain(5)
    events[2]["rows_written"] += 1
    r = verify(events)
    assert not r.ok and r.first_bad == 2 and r.event_id == events[2]["event_id"] and r.seq == 2
    assert "hash" in r.reason


def test_edited_nested_column_names_that_event():
    events = chain(4)
    events[1]["columns"]["ssn"]["strategy"] = "keep"
    assert verify(events).first_bad == 1


def test_swapped_events_name_the_first_out_of_place():
    events = chain(5)
    events[1], events[3] = events[3], events[1]
    r = verify(events)
    assert (r.first_bad, r.seq, r.event_id) == (1, 3, events[1]["event_id"])
    assert "out of order" in r.reason


def test_adjacent_swap():
    events = chain(4)
    events[2], events[3] = events[3], events[2]
    r = verify(events)
    assert (r.first_bad, r.seq) == (2, 3)


def test_deleted_middle_event_names_the_one_after_the_gap():
    events = chain(5)
    del events[2]
    r = verify(events)
    assert (r.first_bad, r.seq, r.event_id) == (2, 3, events[2]["event_id"])
    assert "missing" in r.reason


def test_deleted_first_event():
    events = chain(3)[1:]
    r = verify(events)
    assert (r.first_bad, r.seq) == (0, 1) and "missing" in r.reason


def test_inserted_event_with_garbage_hash_is_named():
    events = chain(4)
    forged = {**make_event(9), "seq": 2, "prev_hash": events[1]["hash"], "hash": "f" * 64}
    events.insert(2, forged)
    r = verify(events)
    assert (r.first_bad, r.event_id) == (2, forged["event_id"])


def test_inserted_well_formed_forgery_is_named():
    """A forged event with a correct hash, seq and prev_hash still does not fit: the next genuine event links past."""
    events = chain(5)
    forged = seal(make_event(99), events[1])  # seq 2, chained after event 1
    events.insert(2, forged)
    r = verify(events)
    assert (r.first_bad, r.event_id) == (2, forged["event_id"])


def test_inserted_forgery_with_wrong_seq_is_named():
    events = chain(4)
    forged = resealed(seal(make_event(99), events[1]), seq=7)
    events.insert(2, forged)
    r = verify(events)
    assert (r.first_bad, r.event_id) == (2, forged["event_id"])


def test_edited_and_rehashed_event_is_named():
    events = chain(5)
    events[2] = resealed(events[2], rows_quarantined=0)
    r = verify(events)
    assert (r.first_bad, r.event_id) == (2, events[2]["event_id"]) and "re-hashed" in r.reason


def test_replaced_event_is_named():
    events = chain(5)
    events[3] = seal(make_event(42), events[2])
    r = verify(events)
    assert (r.first_bad, r.event_id) == (3, events[3]["event_id"])


def test_duplicated_event_names_the_second_copy():
    events = chain(4)
    events.insert(2, copy.deepcopy(events[1]))
    r = verify(events)
    assert r.first_bad == 2 and "duplicate" in r.reason


def test_fork_is_named():
    events = chain(3)
    other = seal(make_event(50), events[1])  # a second writer also chained after event 1
    events.insert(3, other)
    events.append(seal(make_event(51), events[2]))
    r = verify(events)
    assert not r.ok and r.first_bad == 2


def test_genesis_must_link_to_zeros():
    ev = seal(make_event(0), None)
    ev = resealed(ev, prev_hash="1" * 64)
    r = verify([ev])
    assert r.first_bad == 0


def test_malformed_events_are_named_not_crashing():
    events: list = chain(3)
    events[1] = None
    assert verify(events).first_bad == 1
    events = chain(3)
    del events[2]["seq"]
    r = verify(events)
    assert r.first_bad == 2 and r.seq is None


def test_truncating_the_end_is_not_detectable_by_the_chain_alone():
    """Documented limitation: a shorter prefix is a valid chain. Compare last_hash with an anchor instead."""
    events = chain(5)
    full = verify(events)
    cut = verify(events[:-1])
    assert cut.ok and cut.events == 4
    assert cut.last_hash != full.last_hash  # what an outside anchor (e.g. the bronze table property) would catch


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_single_edit_is_named(data):
    events = chain(6)
    i = data.draw(st.integers(0, 5))
    field = data.draw(st.sampled_from(["rows_read", "rows_written", "rows_quarantined", "seq", "prev_hash",
                                       "actor", "ts", "table"]))
    ev = events[i]
    ev[field] = ev[field] + 1 if isinstance(ev[field], int) else ev[field] + "x"
    r = verify(events)
    assert not r.ok and r.first_bad == i


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_any_reorder_is_detected_at_the_first_moved_position(data):
    events = chain(6)
    perm = data.draw(st.permutations(range(6)))
    shuffled = [events[p] for p in perm]
    r = verify(shuffled)
    moved = [i for i, p in enumerate(perm) if p != i]
    assert r.ok == (not moved)
    if moved:
        assert r.first_bad == moved[0]
