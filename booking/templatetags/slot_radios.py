"""The times page's radios, one per free time, built with format_html_join.

A busy week at a PCN's scale lists a hundred times or more. The template language spends 30 to
50 µs on each radio (a loop iteration, five variable lookups, escaping), which was most of the page's
rendering (docs/benchmarks.md); the same markup from format_html_join costs a fraction of
that, and every value is still escaped.
"""

from __future__ import annotations

from collections.abc import Iterable

from django import template
from django.utils.html import format_html_join
from django.utils.safestring import SafeString

register = template.Library()

RADIO = (
    '<div class="nhsuk-radios__item">\n'
    '<input class="nhsuk-radios__input" id="slot-{0}" name="slot" type="radio" value="{0}">\n'
    '<label class="nhsuk-label nhsuk-radios__label" for="slot-{0}">\n'
    '{1} <span class="app-slot__practitioner">with {2}</span>\n'
    "</label>\n"
    "</div>\n"
)


@register.simple_tag
def slot_radios(choices: Iterable) -> SafeString:
    """`{% slot_radios day.choices %}`: a radio for each SlotChoice (reference, time, practitioner)."""
    return format_html_join("", RADIO, ((choice.reference, choice.time, choice.practitioner) for choice in choices))
