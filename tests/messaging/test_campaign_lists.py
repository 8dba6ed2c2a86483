"""A manager creates a campaign from a list of patients, the scheduler checks the list, the manager starts it."""

from __future__ import annotations

import csv
import html
import io
from datetime import UTC

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext

from booking.models import AuditEvent, StaffMembership
from messaging.campaigns.checks import campaign_list_check, campaign_lists_check
from messaging.campaigns.forms import DEFAULT_INVITATION
from messaging.campaigns.lists import MAX_ROWS, campaign_list_rows, nhs_number_as_read
from messaging.models import Campaign, CampaignEntry, CampaignUpload
from tests.factories import CampaignEntryFactory, CampaignFactory, PatientFactory
from tests.scenarios import make_campaign_list

NEW = "/campaigns/new/"


def campaign_fields(practice, **overrides):
    fields = {
        "name": "Flu 2026",
        "appointment_type": practice.appointment_type.pk,
        "location": practice.location.pk,
        "practitioner": "",
        "link_expiry": "14d",
        "body": DEFAULT_INVITATION,
        "preferred_channel": "sms",
    }
    fields.update(overrides)
    return fields


def text(response) -> str:
    return html.unescape(response.content.decode())


def upload(content: bytes, name: str = "patients.csv") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content, content_type="text/csv")


def nothing_created() -> bool:
    return not Campaign.objects.exists() and not CampaignUpload.objects.exists() and not CampaignEntry.objects.exists()


def checked_problems(campaign: Campaign) -> list[tuple[int, str]]:
    return list(campaign.entries.order_by("row_number").values_list("row_number", "problem"))


# --- Bad files: a clear message, status 400, nothing created ----------------------------------

BIG_ROW = b"9434765919," + b"x" * 100 + b"\r\n"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00" + b"\x00" * 200, "is a spreadsheet (like .xlsx), not CSV"),
        (b"NHS number\r\n943\x00476\x015919\r\n", "isn't a CSV file"),
        (b"NHS number\r\n\x81\x8d\x8f\x90\x9d\xff\xfe\r\n", "isn't readable text"),
        (b"", "Choose a CSV file of patients, or paste their NHS numbers."),
        (b"  \r\n\r\n", "The file is empty."),
        (b"\xef\xbb\xbf", "The file is empty."),
        (b"NHS number\r\n", "has a header but no rows under it"),
        (b"Surname,Date of birth\r\nSmith,17-May-1980\r\n", "no column headed “NHS number”"),
        (b"NHS number,Notes\r\n" + BIG_ROW * (5 * 1024 * 1024 // len(BIG_ROW) + 1), "larger than 5 MB"),
        (b"NHS number\n" + b"9434765919\n" * (MAX_ROWS + 1), "The file has 50,001 rows; a campaign can have at most"),
    ],
    ids=[
        "xlsx-renamed",
        "binary",
        "undecodable",
        "no-file",
        "blank",
        "bom-only",
        "header-only",
        "no-nhs-column",
        "over-5mb",
        "over-50000-rows",
    ],
)
def test_a_file_the_check_cant_read_is_refused_with_its_reason_and_nothing_is_created(
    manager_client, practice, content, message
):
    data = campaign_fields(practice)
    if content:
        data["list_file"] = upload(content)
    response = manager_client.post(NEW, data)
    assert response.status_code == 400
    page = text(response)
    assert message in page
    assert "There is a problem" in page
    assert nothing_created()


def test_a_file_and_pasted_numbers_together_are_refused(manager_client, practice):
    data = campaign_fields(practice, list_file=upload(b"NHS number\r\n9434765919\r\n"), pasted="9434765919")
    response = manager_client.post(NEW, data)
    assert response.status_code == 400
    assert "Upload a file or paste NHS numbers, not both." in text(response)
    assert nothing_created()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("Please book", "doesn't include it. Add {{Appointment Link}}"),
        ("Book {{Appointment Link}} or {{Appointment Link}}", "can carry one link"),
        ("Hi {{Patient Surname}}: {{Appointment Link}}", "is not a token we know"),
        ("Book: {{Appointment Link}} " + "word " * 320, "SMS messages; the most is 10"),
    ],
)
def test_the_invitation_follows_invite_to_books_rules(manager_client, practice, body, message):
    data = campaign_fields(practice, body=body, list_file=upload(b"NHS number\r\n9434765919\r\n"))
    response = manager_client.post(NEW, data)
    assert response.status_code == 400
    assert message in text(response)
    assert nothing_created()


def test_a_location_that_doesnt_offer_the_type_is_refused(manager_client, practice, hub):
    # The hub shares its smear tests at one of its locations, not the other.
    data = campaign_fields(
        practice,
        appointment_type=hub.appointment_type.pk,
        location=hub.other_location.pk,
        list_file=upload(b"NHS number\r\n9434765919\r\n"),
    )
    response = manager_client.post(NEW, data)
    assert response.status_code == 400
    assert "Choose one of the locations in the list for this appointment type." in text(response)
    assert nothing_created()


# --- Files as the clinical systems write them ----------------------------------------------------


@pytest.mark.parametrize(
    ("header", "delimiter", "line_end", "bom"),
    [
        ("NHS Number", ",", "\r\n", False),  # EMIS Web, Windows line endings
        ("nhs_number", ";", "\n", False),  # semicolons, as a European-set Excel saves
        (" NHS number ", ",", "\n", True),  # a byte-order mark, spaces in the header
        ("NHS No.", "\t", "\r\n", False),
    ],
)
def test_every_rows_outcome_is_checked_whatever_the_files_dialect(
    manager_client, practice, header, delimiter, line_end, bom
):
    patients = make_campaign_list(practice)
    content = patients.csv(header=header, delimiter=delimiter, line_end=line_end)
    response = manager_client.post(NEW, campaign_fields(practice, list_file=upload(b"\xef\xbb\xbf" * bom + content)))
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert response["Location"] == f"/campaigns/{campaign.reference}/check/"
    assert (campaign.status, campaign.list_rows, campaign.list_rows_checked) == ("checking", 10, 0)
    assert not campaign.entries.exists(), "the request checks no row"

    assert campaign_lists_check() == 10

    campaign.refresh_from_db()
    assert (campaign.status, campaign.list_rows_checked) == ("checked", 10)
    assert campaign.checked_at is not None
    assert not CampaignUpload.objects.exists(), "the NHS numbers aren't kept once checked"
    problems = [problem for _, problem in checked_problems(campaign)]
    assert problems == [*patients.numbers, "not_found"]
    assert [row for row, _ in checked_problems(campaign)] == list(range(2, 12))
    found = campaign.entries.get(problem="")
    assert found.patient == practice.patient


def test_another_organisations_patient_is_never_matched_or_named(manager_client, practice):
    patients = make_campaign_list(practice)
    manager_client.post(NEW, campaign_fields(practice, list_file=upload(patients.csv())))
    campaign_lists_check()
    row = CampaignEntry.objects.get(nhs_number=patients.elsewhere.nhs_number)
    assert (row.problem, row.patient) == ("not_found", None)
    not_ours = CampaignEntry.objects.get(problem="not_ours")
    assert not_ours.patient is None, "a patient of the manager's other practice is named nowhere either"
    campaign = Campaign.objects.get()
    page = text(manager_client.get(f"/campaigns/{campaign.reference}/check/"))
    rejected = b"".join(manager_client.get(f"/campaigns/{campaign.reference}/rejected.csv").streaming_content)
    for shown in (page, rejected.decode()):
        assert patients.elsewhere.first_name not in shown
        assert "Faraway" not in shown


def test_opted_out_is_only_a_problem_when_texts_are_preferred(manager_client, practice):
    patients = make_campaign_list(practice)
    manager_client.post(NEW, campaign_fields(practice, preferred_channel="email", list_file=upload(patients.csv())))
    campaign_lists_check()
    row = CampaignEntry.objects.get(nhs_number=patients.numbers["opted_out"])
    # No email and no texts: nobody can reach them, whichever is preferred.
    assert row.problem == "no_contact"


def test_pasted_numbers_are_checked_like_a_file(manager_client, practice):
    patients = make_campaign_list(practice)
    pasted = "\n".join(f"  {number[:3]} {number[3:6]} {number[6:]}  " for number in patients.rows) + "\n\n"
    response = manager_client.post(NEW, campaign_fields(practice, pasted=pasted))
    assert response.status_code == 302
    campaign = Campaign.objects.get()
    assert (campaign.list_name, campaign.list_rows) == ("Pasted NHS numbers", 10)
    campaign_lists_check()
    assert [problem for _, problem in checked_problems(campaign)] == [*patients.numbers, "not_found"]


@pytest.mark.parametrize(
    ("cell", "read"),
    [
        ('="943 476 5919"', "9434765919"),
        ("=9434765919", "9434765919"),
        ("+943-476-5919", "9434765919"),
        ('=HYPERLINK("http://evil.example","x")', '=HYPERLINK("http://evil.example","x")'),
        ("@SUM(A1:A9)", "@SUM(A1:A9)"),
        ("-1+1", "-1+1"),
        ("943 476 5919", "9434765919"),
    ],
)
def test_a_formula_cell_is_read_as_text_and_gives_only_a_plain_number(cell, read):
    assert nhs_number_as_read(cell) == read


def test_formula_cells_are_never_run_and_come_back_escaped_in_the_rejected_rows(manager_client, practice):
    content = b'NHS number\r\n"=""943 476 5919"""\r\n"=HYPERLINK(""http://evil.example"",""x"")"\r\n@SUM(A1:A9)\r\n'
    assert [number for _, number in campaign_list_rows(content=content)] == [
        "9434765919",
        '=HYPERLINK("http://evil.example","x")',
        "@SUM(A1:A9)",
    ]
    manager_client.post(NEW, campaign_fields(practice, list_file=upload(content)))
    campaign_lists_check()
    campaign = Campaign.objects.get()
    assert checked_problems(campaign) == [(2, "not_found"), (3, "invalid"), (4, "invalid")]
    response = manager_client.get(f"/campaigns/{campaign.reference}/rejected.csv")
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows == [
        ["Row", "NHS number", "Reason"],
        ["2", "9434765919", "Not found"],
        ["3", '\'=HYPERLINK("http://evil.example","x")', "Invalid NHS number"],
        ["4", "'@SUM(A1:A9)", "Invalid NHS number"],
    ]


# --- The check: batches, queries, progress, two schedulers -------------------------------------


def make_checking_campaign(practice, *, rows: int) -> Campaign:
    """A CHECKING campaign whose list has `rows` rows of the practice's patients."""
    patients = [PatientFactory(organisation=practice.organisation) for _ in range(rows)]
    content = ("NHS number\r\n" + "".join(f"{p.nhs_number}\r\n" for p in patients)).encode()
    campaign = CampaignFactory(
        organisation=practice.organisation,
        appointment_type=practice.appointment_type,
        location=practice.location,
        created_by=practice.user,
        status="checking",
        list_rows=rows,
    )
    CampaignUpload.objects.create(campaign=campaign, content=content)
    return campaign


@pytest.mark.django_db
def test_a_batch_takes_the_same_queries_whatever_its_size(practice):
    counts = []
    for rows in (5, 60):
        campaign = make_checking_campaign(practice, rows=rows)
        with CaptureQueriesContext(connection) as queries:
            assert campaign_list_check(campaign_id=campaign.pk, batch_rows=rows) == rows
        counts.append(len(queries))
    assert counts[0] == counts[1]
    assert counts[0] <= 14


@pytest.mark.django_db
def test_each_further_batch_adds_the_same_few_queries(practice):
    totals = []
    for batch_rows in (20, 10, 5):  # 1, 2 and 4 batches of the same 20 rows
        campaign = make_checking_campaign(practice, rows=20)
        with CaptureQueriesContext(connection) as queries:
            campaign_list_check(campaign_id=campaign.pk, batch_rows=batch_rows)
        totals.append(len(queries))
        assert campaign.entries.count() == 20
    per_batch = totals[1] - totals[0]
    assert totals[2] - totals[1] == 2 * per_batch
    assert per_batch <= 6


@pytest.mark.django_db
def test_progress_is_kept_after_each_batch_and_a_later_run_goes_on_from_it(practice):
    campaign = make_checking_campaign(practice, rows=7)
    CampaignEntryFactory(campaign=campaign, row_number=2, patient=practice.patient)  # a first batch done before
    Campaign.objects.filter(pk=campaign.pk).update(list_rows_checked=1)
    assert campaign_list_check(campaign_id=campaign.pk, batch_rows=3) == 6
    campaign.refresh_from_db()
    assert (campaign.status, campaign.list_rows_checked) == ("checked", 7)
    assert list(campaign.entries.values_list("row_number", flat=True)) == list(range(2, 9))
    assert campaign_list_check(campaign_id=campaign.pk) == 0, "a checked list is not checked again"


@pytest.mark.django_db
def test_a_duplicate_is_found_across_batches_and_runs(practice):
    number = practice.patient.nhs_number
    content = f"NHS number\r\n{number}\r\n9434765919\r\n{number}\r\n".encode()
    campaign = CampaignFactory(
        organisation=practice.organisation,
        appointment_type=practice.appointment_type,
        location=practice.location,
        created_by=practice.user,
        status="checking",
        list_rows=3,
    )
    CampaignUpload.objects.create(campaign=campaign, content=content)
    campaign_list_check(campaign_id=campaign.pk, batch_rows=1)
    assert checked_problems(campaign) == [(2, ""), (3, "not_found"), (4, "duplicate")]


# --- The pages ---------------------------------------------------------------------------------


def test_the_whole_flow_through_the_pages(manager_client, practice):
    home = text(manager_client.get("/"))
    assert ">Campaigns</a>" in home
    page = text(manager_client.get("/campaigns/"))
    assert "<h1>Campaigns</h1>" in page
    assert ">New campaign</a>" in page

    page = text(manager_client.get(NEW))
    for label in (
        "Campaign name",
        "Select an appointment type",
        "Location",
        "Practitioner (optional)",
        "Link expiry",
        "Message",
        "Patients (CSV file)",
        "SMS, or email if no mobile",
        "Email, or SMS if no email",
    ):
        assert f">{label}</label>" in page, label
    assert "{{Appointment Link}}" in page, "the message starts as an invitation with its link"
    assert 'accept=".csv,text/csv"' in page
    assert '<option value="14d" selected>14 days</option>' in page

    patients = make_campaign_list(practice)
    response = manager_client.post(NEW, campaign_fields(practice, list_file=upload(patients.csv(), "flu.csv")))
    campaign = Campaign.objects.get()
    check = f"/campaigns/{campaign.reference}/check/"
    assert response["Location"] == check
    page = text(manager_client.get(check))
    assert "Checked 0 of 10 rows" in page
    assert '<noscript><meta http-equiv="refresh" content="2"></noscript>' in page
    assert 'hx-trigger="every 2s"' in page
    polled = manager_client.get(check, headers={"HX-Request": "true"})
    assert "Checked 0 of 10 rows" in text(polled)
    assert "<h1>" not in text(polled)
    assert "Start sending" not in page

    campaign_lists_check()
    polled = manager_client.get(check, headers={"HX-Request": "true"})
    assert (polled.status_code, polled["HX-Refresh"]) == (204, "true")
    page = text(manager_client.get(check))
    assert "http-equiv" not in page
    for label in (
        "Found",
        "Not found",
        "Invalid NHS number",
        "Duplicate in the list",
        "Not one of our patients",
        "No way to contact",
        "Opted out of texts",
        "Already has a future appointment of this type",
        "Already holds an active link for this type",
    ):
        assert f'<th scope="row" class="nhsuk-table__header">{label}</th>' in page, label
    # The practice's own slots: 3 free times (and the one booked by the scenario isn't free).
    assert "1 patient for 3 free times in the next" in page
    assert "More patients than free times" not in page
    assert "Download the rejected rows (CSV)" in page
    download = manager_client.get(f"/campaigns/{campaign.reference}/rejected.csv")
    rejected = list(csv.reader(io.StringIO(b"".join(download.streaming_content).decode())))
    assert len(rejected) == 1 + 9

    response = manager_client.post(
        f"/campaigns/{campaign.reference}/start/",
        {"starts_at": "", "per_day": "50", "per_free_time": "3", "follow_up_1_days": "4", "follow_up_2_days": ""},
    )
    assert response.status_code == 302
    assert response["Location"] == f"/campaigns/{campaign.reference}/"
    campaign.refresh_from_db()
    assert (campaign.status, campaign.per_day, campaign.per_free_time) == ("sending", 50, 3)
    assert (campaign.follow_up_1_days, campaign.follow_up_2_days) == (4, None)
    assert campaign.started_by == practice.user
    assert campaign.starts_at is not None
    created, started = AuditEvent.objects.filter(action=AuditEvent.Action.CAMPAIGN).order_by("pk")
    assert created.detail == {"campaign": campaign.reference, "did": "created", "rows": campaign.list_rows}
    assert started.detail == {"campaign": campaign.reference, "did": "started"}
    assert created.actor == started.actor == practice.user

    # A second tab's "Start sending": it was started once.
    again = manager_client.post(f"/campaigns/{campaign.reference}/start/", {"per_day": "1", "per_free_time": "1"})
    assert again["Location"] == f"/campaigns/{campaign.reference}/"
    campaign.refresh_from_db()
    assert campaign.per_day == 50
    assert AuditEvent.objects.filter(action=AuditEvent.Action.CAMPAIGN, detail__did="started").count() == 1
    assert manager_client.get(check)["Location"] == f"/campaigns/{campaign.reference}/"


def test_more_patients_than_five_a_free_time_warns(manager_client, practice):
    campaign = make_checking_campaign(practice, rows=16)
    campaign_list_check(campaign_id=campaign.pk)
    page = text(manager_client.get(f"/campaigns/{campaign.reference}/check/"))
    assert "16 patients for 3 free times" in page
    assert "More patients than free times" in page


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"per_day": "0", "per_free_time": "2"}, "Invitations per day must be 1 or more."),
        ({"per_day": "10", "per_free_time": "6"}, "Invitations per free time must be from 1 to 5."),
        ({"per_day": "10", "per_free_time": "2", "follow_up_1_days": "5", "follow_up_2_days": "5"}, "must come after"),
        ({"per_day": "10", "per_free_time": "2", "follow_up_2_days": "5"}, "Set the first follow-up"),
        ({"per_day": "10", "per_free_time": "2", "starts_at": "tomorrow"}, "Enter the start as a date and time"),
        # 1:30am on the day the clocks go forward doesn't exist in London.
        ({"per_day": "10", "per_free_time": "2", "starts_at": "2027-03-28T01:30"}, "it may not exist"),
    ],
)
def test_a_pace_the_campaign_cant_keep_is_refused_and_it_doesnt_start(manager_client, practice, fields, message):
    campaign = make_checking_campaign(practice, rows=2)
    campaign_list_check(campaign_id=campaign.pk)
    response = manager_client.post(f"/campaigns/{campaign.reference}/start/", fields)
    assert response.status_code == 400
    assert message in text(response)
    campaign.refresh_from_db()
    assert campaign.status == "checked"


def test_links_must_outlast_the_last_follow_up(manager_client, practice):
    campaign = make_checking_campaign(practice, rows=2)
    Campaign.objects.filter(pk=campaign.pk).update(link_expiry="7d")
    campaign_list_check(campaign_id=campaign.pk)
    fields = {"per_day": "10", "per_free_time": "2", "follow_up_1_days": "5", "follow_up_2_days": "10"}
    response = manager_client.post(f"/campaigns/{campaign.reference}/start/", fields)
    assert response.status_code == 400
    assert "The links expire after 7 days, before the follow-up on day 10" in text(response)
    fields["follow_up_2_days"] = ""
    assert manager_client.post(f"/campaigns/{campaign.reference}/start/", fields).status_code == 302


def test_a_list_with_no_one_to_invite_cant_start(manager_client, practice):
    campaign = make_checking_campaign(practice, rows=0)
    CampaignUpload.objects.filter(pk=campaign.pk).update(content=b"NHS number\r\n9434765919\r\n")
    Campaign.objects.filter(pk=campaign.pk).update(list_rows=1)
    campaign_list_check(campaign_id=campaign.pk)
    page = text(manager_client.get(f"/campaigns/{campaign.reference}/check/"))
    assert "No one on the list can be invited" in page
    response = manager_client.post(f"/campaigns/{campaign.reference}/start/", {"per_day": "10", "per_free_time": "2"})
    assert response.status_code == 400
    assert "No one on the list can be invited" in text(response)


def test_campaigns_are_for_managers(staff_client, practice):
    for path in ("/campaigns/", NEW):
        response = staff_client.get(path)
        assert response.status_code == 403
        assert "You do not have access to this page" in text(response)
    assert ">Campaigns</a>" not in text(staff_client.get("/"))
    assert staff_client.post(NEW, campaign_fields(practice, pasted="9434765919")).status_code == 403
    assert nothing_created()


def test_the_campaigns_page_lists_the_organisations_campaigns(manager_client, practice, other_practice):
    mine = CampaignFactory(organisation=practice.organisation, name="Asthma reviews", list_rows=1234)
    CampaignFactory(organisation=other_practice.organisation, name="Someone else's")
    page = text(manager_client.get("/campaigns/"))
    assert f'href="/campaigns/{mine.reference}/">Asthma reviews</a>' in page
    assert "Ready to start" in page
    assert "1,234" in page
    assert "Someone else" not in page


def test_a_manager_of_another_practice_is_not_told_the_campaign_exists(client, practice, other_practice):
    campaign = make_checking_campaign(practice, rows=1)
    StaffMembership.objects.filter(user=other_practice.user).update(role=StaffMembership.Role.MANAGER)
    client.force_login(other_practice.user)
    assert client.get(f"/campaigns/{campaign.reference}/check/").status_code == 404
    assert client.get("/campaigns/not-a-reference/check/").status_code == 404


def test_the_pages_make_the_same_queries_whatever_the_lists_size(manager_client, practice):
    def queries(path: str, **headers: str) -> int:
        with CaptureQueriesContext(connection) as captured:
            assert manager_client.get(path, headers=headers).status_code == 200
        return len(captured)

    counts = []
    for rows in (3, 40):
        campaign = make_checking_campaign(practice, rows=rows)
        checking = queries(f"/campaigns/{campaign.reference}/check/")
        polled = queries(f"/campaigns/{campaign.reference}/check/", **{"HX-Request": "true"})
        campaign_list_check(campaign_id=campaign.pk)
        counts.append((checking, polled, queries(f"/campaigns/{campaign.reference}/check/"), queries("/campaigns/")))
    assert counts[0] == counts[1]


def test_htmx_restoring_the_check_page_from_history_gets_the_whole_page(manager_client, practice):
    campaign = make_checking_campaign(practice, rows=2)
    headers = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
    page = text(manager_client.get(f"/campaigns/{campaign.reference}/check/", headers=headers))
    assert "<h1>Checking the list</h1>" in page


def test_the_link_fields_narrow_to_the_chosen_type_and_location(manager_client, practice):
    blank = text(manager_client.get(NEW))
    assert "Dr Riverside" not in blank, "no practitioner before a type and location are chosen"
    choices = {"appointment_type": practice.appointment_type.pk, "location": practice.location.pk}
    fields = text(manager_client.get(NEW, choices, headers={"HX-Request": "true"}))
    assert f'<option value="{practice.practitioner.pk}">Dr Riverside (GP)</option>' in fields
    assert "<h1>" not in fields
    assert "There is a problem" not in fields
    assert "nhsuk-error-message" not in fields


def test_the_start_time_is_read_as_london_time_in_summer_and_winter(manager_client, practice):
    for typed, utc in (
        ("2027-06-01T09:00", "2027-06-01 08:00:00+00:00"),
        ("2027-12-01T09:00", "2027-12-01 09:00:00+00:00"),
    ):
        campaign = make_checking_campaign(practice, rows=1)
        campaign_list_check(campaign_id=campaign.pk)
        fields = {"starts_at": typed, "per_day": "10", "per_free_time": "2"}
        assert manager_client.post(f"/campaigns/{campaign.reference}/start/", fields).status_code == 302
        campaign.refresh_from_db()
        assert str(campaign.starts_at.astimezone(UTC)) == utc
