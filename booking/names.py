"""Names people type (an organisation's, a site's, a clinician's, a patient's, a template's): one rule
in Python and in SQL.

Names go into email headers (the sender's display name, the subject) and into texts. A line
break in one is a header injection Django refuses at send time (BadHeaderError), so the
message could never go; other control characters garble a text. They are refused where the
name is typed: the field's validator (forms and admin), and a check constraint on each column
(the same pattern, read by PostgreSQL's regular expressions) for every other way in.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from django.db.models import CheckConstraint, Q

# C0 controls (line feed, carriage return, tab...), DEL, C1 controls (NEL) and the Unicode line
# and paragraph separators: everything that breaks a line or prints as nothing.
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f-\x9f\u2028\u2029]"
NAME_ERROR = "Names can't contain line breaks or control characters."

validate_name = RegexValidator(
    CONTROL_CHARACTERS, message=NAME_ERROR, code="name_control_characters", inverse_match=True
)


def name_check(*, field: str, name: str) -> CheckConstraint:
    """The database's copy of `validate_name` for the column `field`, as a constraint called `name`."""
    return CheckConstraint(
        condition=~Q(**{f"{field}__regex": CONTROL_CHARACTERS}), name=name, violation_error_message=NAME_ERROR
    )
