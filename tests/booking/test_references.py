"""Short public references: they round-trip, avoid confusable characters and differ by kind."""

from __future__ import annotations

import itertools

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

    # A production-length salt: hashids reads only its first ~20 characters, which cut off a
    # namespace appended to it and gave every kind the same reference for the same id.
    LONG_SALT = "a-production-salt-of-fifty-characters-0123456789ab"

    def test_kinds_of_object_get_different_references_under_a_long_salt(self, settings):
        settings.HASHIDS_SALT = self.LONG_SALT
        assert len(settings.HASHIDS_SALT) == 50
        kinds = ["patient", "message", "link", "slot", "appointment"]
        for pk in [*range(1, 300), 10**6, 2**40]:
            references = {kind: encode_reference(pk, namespace=kind) for kind in kinds}
            assert len(set(references.values())) == len(kinds), (pk, references)
            for kind, other in itertools.permutations(kinds, 2):
                assert decode_reference(references[kind], namespace=kind) == pk
                assert decode_reference(references[kind], namespace=other) is None, (pk, kind, other)

    def test_every_character_of_the_salt_changes_the_references(self, settings):
        settings.HASHIDS_SALT = self.LONG_SALT
        before = encode_reference(42, namespace="appointment")
        settings.HASHIDS_SALT = self.LONG_SALT[:-1] + "c"
        assert encode_reference(42, namespace="appointment") != before

    @given(st.text(max_size=40))
    def test_anything_else_decodes_to_nothing_or_a_canonical_id(self, text):
        pk = decode_reference(text)
        if pk is not None:
            assert encode_reference(pk) == text.strip().upper().replace(" ", "").replace("-", "")
