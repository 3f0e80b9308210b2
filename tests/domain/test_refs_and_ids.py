"""References people type, and the run ids made where runs start."""

from __future__ import annotations

import pytest

from cairn.domain.errors import Invalid
from cairn.domain.ids import is_ulid, new_ulid, ulid_time_ms
from cairn.domain.refs import RefKind, parse_ref


@pytest.mark.parametrize(
    ("text", "kind", "name", "extra"),
    [
        ("iris", RefKind.NAME, "iris", {}),
        ("iris:3", RefKind.VERSION, "iris", {"version": 3}),
        ("iris@production", RefKind.ALIAS, "iris", {"alias": "production"}),
        ("iris@1.2.0", RefKind.SEMVER, "iris", {"semver": "1.2.0"}),
        ("nlp/translate:12", RefKind.VERSION, "translate", {"project": "nlp", "version": 12}),
        ("wine.red_v2@champion", RefKind.ALIAS, "wine.red_v2", {"alias": "champion"}),
    ],
)
def test_parse_ref(text: str, kind: RefKind, name: str, extra: dict[str, object]) -> None:
    ref = parse_ref(text)
    assert (ref.kind, ref.name) == (kind, name)
    for key, value in extra.items():
        assert getattr(ref, key) == value
    assert str(ref) == text
    assert parse_ref(str(ref)) == ref


def test_run_refs() -> None:
    run_id = new_ulid()
    ref = parse_ref(f"runs/{run_id}")
    assert (ref.kind, ref.name) == (RefKind.RUN, run_id)
    assert parse_ref(f"runs/{run_id.lower()}").name == run_id
    assert str(ref) == f"runs/{run_id}"


@pytest.mark.parametrize(
    "text", ["", "  ", "iris:", "iris:0", "iris@", "@prod", "runs/xyz", "a b", "x:1:2"]
)
def test_malformed_refs_name_the_ref(text: str) -> None:
    with pytest.raises(Invalid) as err:
        parse_ref(text)
    assert err.value.field == "ref"


def test_ulids_sort_by_creation_even_within_a_millisecond() -> None:
    ids = [new_ulid(now_ms=1_700_000_000_000) for _ in range(1000)]
    assert ids == sorted(ids) and len(set(ids)) == 1000
    assert all(is_ulid(i) for i in ids)
    assert ulid_time_ms(ids[0]) == 1_700_000_000_000
    later = new_ulid(now_ms=1_700_000_000_001)
    assert later > ids[-1]


def test_a_ulid_is_its_128_bits_in_crockford_base32() -> None:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

    def bits(ulid: str) -> int:
        value = 0
        for ch in ulid:
            value = value * 32 + alphabet.index(ch)
        return value

    for ms in (0, 1, 1_700_000_000_000, (1 << 48) - 1):
        first, second = new_ulid(now_ms=ms), new_ulid(now_ms=ms)
        assert len(first) == 26 and bits(first) < 1 << 128
        assert bits(first) >> 80 == ms == ulid_time_ms(first)
        assert bits(second) == bits(first) + 1 or bits(second) & ((1 << 80) - 1) == 0
    assert new_ulid(now_ms=(1 << 48) - 1).startswith("7ZZZZZZZZZ")
