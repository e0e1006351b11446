"""Id range claims: distinct per workspace, stable for one, stale claims taken over, used ranges skipped."""

from __future__ import annotations

import json

from ws_plugin_nspawn import uidrange


def _record(tmp_path, name: str):
    record = tmp_path / name / "record.json"
    record.parent.mkdir()
    record.write_text("{}")
    return record


def test_claims_are_distinct_aligned_and_above_other_users_of_ids(tmp_path):
    registry = tmp_path / "ranges"
    firsts = [uidrange.claim(_record(tmp_path, f"w{i}"), registry) for i in range(6)]
    assert len(set(firsts)) == 6
    for first in firsts:
        assert uidrange.FIRST <= first < 0x7FFE0000 and (first - uidrange.FIRST) % uidrange.SIZE == 0


def test_the_same_record_gets_the_same_range_until_released(tmp_path):
    registry = tmp_path / "ranges"
    record = _record(tmp_path, "w")
    first = uidrange.claim(record, registry)
    assert uidrange.claim(record, registry) == first
    uidrange.release(first, record, registry)
    assert list(registry.glob("[0-9]*")) == []


def test_a_claim_whose_record_is_gone_or_names_another_range_is_stale(tmp_path):
    registry = tmp_path / "ranges"
    moved, gone = _record(tmp_path, "moved"), _record(tmp_path, "gone")
    first = uidrange.claim(moved, registry)
    moved.write_text(json.dumps({"uid_shift": first + uidrange.SIZE}))  # its record names another range now
    uidrange.claim(gone, registry)
    gone.unlink()
    assert uidrange._live_claims(registry) == {}
    assert list(registry.glob("[0-9]*")) == []


def test_ranges_in_use_by_processes_or_subordinate_ids_are_skipped(tmp_path, monkeypatch):
    registry = tmp_path / "ranges"
    everything_but_last = [(0, uidrange.FIRST + (uidrange.SLOTS - 1) * uidrange.SIZE)]
    monkeypatch.setattr(uidrange, "_mapped_by_processes", lambda: everything_but_last)
    record = _record(tmp_path, "w")
    assert uidrange.claim(record, registry) == uidrange.FIRST + (uidrange.SLOTS - 1) * uidrange.SIZE
