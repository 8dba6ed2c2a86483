"""Provider reports that arrive together, on the real database: the final status holds, one event per report."""

from __future__ import annotations

import pytest

from messaging.models import Message, MessageStatusEvent
from messaging.status_reports import RANK, StatusReport, message_status_report
from tests.concurrency import race
from tests.factories import MessageFactory

pytestmark = pytest.mark.django_db(transaction=True)

Status = Message.Status


def test_simultaneous_reports_end_delivered_with_one_event_per_report():
    message = MessageFactory(status=Status.SENDING, provider_message_id="SM" + "a" * 32)
    # Twilio sends each status once but retries on timeouts: here every report comes four times at once.
    reports = [("delivered", Status.DELIVERED), ("sent", Status.SENT), ("queued", Status.SENT)] * 4

    results = race(
        lambda i: message_status_report(
            message=message, report=StatusReport(status=reports[i][1], provider_status=reports[i][0])
        ),
        threads=len(reports),
    )

    assert not [result for result in results if isinstance(result, Exception)], results
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED
    assert sorted(MessageStatusEvent.objects.filter(message=message).values_list("provider_status", flat=True)) == [
        "delivered",
        "queued",
        "sent",
    ]


def test_simultaneous_delivered_and_failed_keep_whichever_came_first():
    message = MessageFactory(status=Status.SENT, provider_message_id="SM" + "b" * 32)
    reports = [("delivered", Status.DELIVERED), ("undelivered", Status.FAILED)] * 4

    results = race(
        lambda i: message_status_report(
            message=message,
            report=StatusReport(status=reports[i][1], provider_status=reports[i][0], failure_reason="Not delivered."),
        ),
        threads=len(reports),
    )

    moved = [result for result in results if result is True]
    assert len(moved) == 1, results
    final = Message.objects.get(pk=message.pk)
    assert final.status in (Status.DELIVERED, Status.FAILED)
    assert (final.failure_reason == "Not delivered.") == (final.status == Status.FAILED)


def _read_modify_write(message: Message, status: str) -> None:
    """What the conditional UPDATE replaces: decide from the status this process read earlier."""
    if RANK[status] > RANK[message.status]:
        message.status = status
        message.save(update_fields=["status"])


def test_control_a_stale_read_lets_a_late_sent_overwrite_delivered():
    # The callback for "sent" read the message (still sending) before "delivered" was written.
    message = MessageFactory(status=Status.SENDING)
    read_by_the_sent_callback = Message.objects.get(pk=message.pk)
    Message.objects.filter(pk=message.pk).update(status=Status.DELIVERED)

    _read_modify_write(read_by_the_sent_callback, Status.SENT)

    assert Message.objects.get(pk=message.pk).status == Status.SENT  # the bug the guard prevents


def test_the_conditional_update_ignores_a_stale_read():
    message = MessageFactory(status=Status.SENDING)
    read_by_the_sent_callback = Message.objects.get(pk=message.pk)
    Message.objects.filter(pk=message.pk).update(status=Status.DELIVERED)

    moved = message_status_report(
        message=read_by_the_sent_callback, report=StatusReport(status=Status.SENT, provider_status="sent")
    )

    assert not moved
    assert Message.objects.get(pk=message.pk).status == Status.DELIVERED
