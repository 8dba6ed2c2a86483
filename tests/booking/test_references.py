"""Short public references: they round-trip, avoid confusable characters and differ by kind."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from booking.references import decode_reference, encode_reference


class TestReferences:
    @given(st.integers(min_value=1, max_value=2**62))
    def test_references_round_trip(self, pk):
        reference = encode_reference(pk, namespace="appointment")
        assert decode_reference(reference, namespace="appointment") == pk
        assert decode_reference(reference.lower(), namespace="appointment") == pk

    def test_references_are_short_and_avoid_confusable_characters(self):
        references = [encode_reference(pk) for pk in range(1, 2000)]
        assert all(6 <= len(reference) <= 8 for reference in references)
        assert not set("".join(references)) & set("01OIL")
        assert len(set(references)) == len(references)

    def test_kinds_of_object_get_different_references(self):
        assert encode_reference(42, namespace="appointment") != encode_reference(42, namespace="link")

    @given(st.text(max_size=40))
    def test_anything_else_decodes_to_nothing_or_a_canonical_id(self, text):
        pk = decode_reference(text)
        if pk is not None:
            assert encode_reference(pk) == text.strip().upper().replace(" ", "").replace("-", "")
