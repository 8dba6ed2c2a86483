"""Django admin for the booking domain.

Every list page selects its related rows up front (`list_select_related`), so it makes the
same number of queries whatever the number of rows; tests hold it to that.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, TypedDict, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.db.models import Count, Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.html import format_html_join

from booking.access import ADMIN_ROLES, organisation_ids_for
from booking.admin_scope import OrganisationScopedAdmin
from booking.appointments import appointment_cancel
from booking.audit import audit_record
from booking.links import booking_link_revoke, booking_link_unlock
from booking.models import (
    Appointment,
    AppointmentType,
    AuditEvent,
    BookingLink,
    Location,
    Organisation,
    Patient,
    Practitioner,
    Rota,
    SharingAgreement,
    Slot,
    StaffMembership,
    Weekday,
)
from booking.nhs_numbers import normalise_nhs_number
from booking.phones import normalise_phone_number
from booking.slots import slots_block, slots_generate_from_rotas, slots_unblock

if TYPE_CHECKING:
    from django_stubs_ext import WithAnnotations

DEFAULT_GENERATION_DAYS = 28


class StaffMembershipInline(admin.TabularInline):
    model = StaffMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Organisation)
class OrganisationAdmin(OrganisationScopedAdmin):
    organisation_lookups = ("pk",)
    list_display = ["name", "ods_code", "kind", "phone_for_display", "uses_nhs_identity"]
    list_filter = ["kind"]
    search_fields = ["name", "ods_code"]
    inlines = [StaffMembershipInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A new organisation is someone else's practice: an organisation's admin made one, gave
        # it a name and staff, and could then share with it and accept for it. Superusers only.
        return request.user.is_superuser

    @admin.display(description="Phone")
    def phone_for_display(self, obj: Organisation) -> str:
        return obj.phone_for_display


@admin.register(StaffMembership)
class StaffMembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "organisation", "role", "created_at"]
    list_filter = ["role", "organisation"]
    search_fields = ["user__username", "user__first_name", "user__last_name", "user__email", "organisation__name"]
    autocomplete_fields = ["user", "organisation"]
    list_select_related = ["user", "organisation"]


@admin.register(Location)
class LocationAdmin(OrganisationScopedAdmin):
    list_display = ["name", "organisation", "town", "postcode", "is_active"]
    list_filter = ["is_active", "organisation"]
    search_fields = ["name", "address_line_1", "town", "postcode", "organisation__name"]
    autocomplete_fields = ["organisation"]
    list_select_related = ["organisation"]


@admin.register(Practitioner)
class PractitionerAdmin(OrganisationScopedAdmin):
    list_display = ["name", "role", "organisation", "location_names", "is_active"]
    list_filter = ["is_active", "organisation"]
    search_fields = ["name", "role", "organisation__name"]
    autocomplete_fields = ["organisation", "locations"]
    list_select_related = ["organisation"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Practitioner]:
        return super().get_queryset(request).prefetch_related("locations")

    @admin.display(description="Locations")
    def location_names(self, obj: Practitioner) -> str:
        return ", ".join(location.name for location in obj.locations.all())


@admin.register(AppointmentType)
class AppointmentTypeAdmin(OrganisationScopedAdmin):
    list_display = [
        "name",
        "organisation",
        "mode",
        "duration_minutes",
        "self_bookable",
        "minimum_notice_hours",
        "maximum_days_ahead",
        "is_active",
    ]
    list_filter = ["mode", "self_bookable", "is_active", "organisation"]
    search_fields = ["name", "organisation__name"]
    autocomplete_fields = ["organisation"]
    list_select_related = ["organisation"]
    fieldsets = [
        (None, {"fields": ["organisation", "name", "mode", "duration_minutes", "self_bookable", "is_active"]}),
        ("Booking window", {"fields": ["minimum_notice_hours", "maximum_days_ahead"]}),
        ("Changes and cancellations online", {"fields": ["online_changes_until_hours", "max_changes"]}),
        ("Reminders", {"fields": ["remind_1_day", "remind_3_days", "remind_7_days"]}),
        ("Shown to patients", {"fields": ["guidance"]}),
    ]


class RotaForm(forms.ModelForm):
    weekdays = forms.TypedMultipleChoiceField(
        choices=Weekday.choices, coerce=int, widget=forms.CheckboxSelectMultiple, label="Days"
    )

    class Meta:
        model = Rota
        fields = [
            "practitioner",
            "location",
            "appointment_type",
            "weekdays",
            "start_time",
            "end_time",
            "slot_minutes",
            "valid_from",
            "valid_until",
            "is_active",
        ]


class GenerateSlotsForm(forms.Form):
    # Browsers' date pickers take and send ISO dates, whatever the site's language.
    start_date = forms.DateField(
        label="From", widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"), input_formats=["%Y-%m-%d"]
    )
    end_date = forms.DateField(
        label="To (inclusive)",
        widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        input_formats=["%Y-%m-%d"],
    )

    MAX_DAYS = 366

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        start, end = cleaned.get("start_date"), cleaned.get("end_date")
        if start and end:
            if end < start:
                raise forms.ValidationError("The end date must be on or after the start date.", code="end_before_start")
            if (end - start).days >= self.MAX_DAYS:
                raise forms.ValidationError("Generate at most a year of slots at a time.", code="range_too_long")
        return cleaned


@admin.register(Rota)
class RotaAdmin(OrganisationScopedAdmin):
    organisation_lookups = ("location__organisation",)
    form = RotaForm
    list_display = [
        "practitioner",
        "appointment_type",
        "location",
        "days",
        "start_time",
        "end_time",
        "slot_minutes",
        "valid_from",
        "valid_until",
        "is_active",
    ]
    list_filter = ["is_active", "location__organisation", "location", "appointment_type"]
    search_fields = ["practitioner__name", "location__name", "appointment_type__name"]
    autocomplete_fields = ["practitioner", "location", "appointment_type"]
    list_select_related = ["practitioner", "location", "appointment_type"]
    actions = ["generate_slots"]

    @admin.display(description="Days")
    def days(self, obj: Rota) -> str:
        return ", ".join(Weekday(day).label[:3] for day in sorted(obj.weekdays))

    @admin.action(description="Generate slots for the selected rotas")
    def generate_slots(self, request: HttpRequest, queryset: QuerySet[Rota]) -> HttpResponse | None:
        today = timezone.localdate()
        if "apply" in request.POST:
            form = GenerateSlotsForm(request.POST)
            if form.is_valid():
                result = slots_generate_from_rotas(
                    rotas=queryset, start_date=form.cleaned_data["start_date"], end_date=form.cleaned_data["end_date"]
                )
                self.message_user(
                    request,
                    f"Created {result.created} slots; {result.already_there} were already there"
                    f" or overlapped existing slots; skipped {len(result.bank_holidays_skipped)} bank holiday"
                    f" day{'s' if len(result.bank_holidays_skipped) != 1 else ''}.",
                    messages.SUCCESS,
                )
                if result.beyond_bank_holiday_data:
                    self.message_user(
                        request,
                        "Part of that range is past the bank holiday data this version knows; "
                        "check those weeks for bank holidays and block their slots.",
                        messages.WARNING,
                    )
                return None
        else:
            form = GenerateSlotsForm(
                initial={"start_date": today, "end_date": today + timedelta(days=DEFAULT_GENERATION_DAYS - 1)}
            )
        context = {
            **self.admin_site.each_context(request),
            "title": "Generate slots",
            "form": form,
            "rotas": queryset.select_related("practitioner", "location", "appointment_type"),
            "opts": self.model._meta,
            "action_checkbox_name": ACTION_CHECKBOX_NAME,
            "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
            "select_across": request.POST.get("select_across") == "1",
        }
        return TemplateResponse(request, "admin/booking/rota/generate_slots.html", context)


class SlotDateFilter(admin.SimpleListFilter):
    title = "when"
    parameter_name = "when"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin[Any]) -> list[tuple[str, str]]:
        return [("today", "Today"), ("week", "Next 7 days"), ("future", "From now"), ("past", "Past")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Slot]) -> QuerySet[Slot]:
        now = timezone.now()
        start_of_today = timezone.localtime(now).replace(hour=0, minute=0, second=0, microsecond=0)
        match self.value():
            case "today":
                return queryset.filter(start__gte=start_of_today, start__lt=start_of_today + timedelta(days=1))
            case "week":
                return queryset.filter(start__gte=now, start__lt=now + timedelta(days=7))
            case "future":
                return queryset.filter(start__gte=now)
            case "past":
                return queryset.filter(start__lt=now)
        return queryset


@admin.register(Slot)
class SlotAdmin(OrganisationScopedAdmin):
    organisation_lookups = ("location__organisation",)
    list_display = ["start", "end", "appointment_type", "practitioner", "location", "status"]
    list_filter = [SlotDateFilter, "status", "location__organisation", "location", "appointment_type"]
    search_fields = ["practitioner__name", "location__name", "appointment_type__name"]
    autocomplete_fields = ["practitioner", "location", "appointment_type", "rota"]
    list_select_related = ["practitioner", "location", "appointment_type"]
    date_hierarchy = "start"
    actions = ["block_slots", "unblock_slots"]
    # A million slots: don't count them all for the paginator's "show all" link.
    show_full_result_count = False

    @admin.action(description="Block the selected free slots")
    def block_slots(self, request: HttpRequest, queryset: QuerySet[Slot]) -> None:
        blocked = slots_block(slots=queryset)
        skipped = queryset.count() - blocked
        self.message_user(request, f"Blocked {blocked} slot{'s' if blocked != 1 else ''}.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"{skipped} selected slot{'s were' if skipped != 1 else ' was'} not free and left as is.",
                messages.WARNING,
            )

    @admin.action(description="Unblock the selected blocked slots")
    def unblock_slots(self, request: HttpRequest, queryset: QuerySet[Slot]) -> None:
        freed = slots_unblock(slots=queryset)
        self.message_user(request, f"Unblocked {freed} slot{'s' if freed != 1 else ''}.", messages.SUCCESS)


class PatientForm(forms.ModelForm):
    """Normalises the NHS number and mobile before the model's length checks see them.

    The model fields are as long as the stored forms (10 digits, E.164), so without this a
    number typed the way people write it ("943 476 5919", "+44 (0)7400 123456") would be
    refused for its length before it is even read.
    """

    nhs_number = forms.CharField(
        label="NHS number", required=False, max_length=20, help_text=Patient._meta.get_field("nhs_number").help_text
    )
    mobile = forms.CharField(required=False, max_length=30, help_text=Patient._meta.get_field("mobile").help_text)

    def clean_nhs_number(self) -> str | None:
        return normalise_nhs_number(self.cleaned_data["nhs_number"]) or None

    def clean_mobile(self) -> str:
        mobile = self.cleaned_data["mobile"]
        return normalise_phone_number(mobile) if mobile else ""


@admin.register(Patient)
class PatientAdmin(OrganisationScopedAdmin):
    form = PatientForm
    list_display = [
        "full_name",
        "date_of_birth",
        "nhs_number_for_display",
        "mobile_for_display",
        "email",
        "organisation",
    ]
    list_filter = ["organisation", "contact_preference", "sms_opted_out"]
    search_fields = ["first_name", "last_name", "=nhs_number", "email", "=mobile"]
    autocomplete_fields = ["organisation"]
    list_select_related = ["organisation"]
    show_full_result_count = False

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # Who saw which patient's record: a GET of the change page shows it all.
        response = super().change_view(request, object_id, form_url, extra_context)
        if request.method == "GET" and response.status_code == 200:
            # A change page that rendered is a TemplateResponse, whose context holds the patient.
            context = cast(TemplateResponse, response).context_data or {}
            patient = context["original"]
            audit_record(
                action=AuditEvent.Action.VIEWED, actor=request.user, patient=patient, detail={"where": "admin"}
            )
        return response

    def save_model(self, request: HttpRequest, obj: Patient, form: PatientForm, change: bool) -> None:
        changed = set(form.changed_data)
        if (
            change
            and "email" in changed
            and (form.initial.get("email") or "").casefold() != obj.email.casefold()
            and "email_undeliverable_reason" not in changed
            and obj.email_undeliverable_reason
        ):
            # The problem (a bounce, a spam report) was the old address's; the new one gets a fresh start.
            obj.email_undeliverable_reason = ""
            changed.add("email_undeliverable_reason")
        super().save_model(request, obj, form, change)
        audit_record(
            action=AuditEvent.Action.CHANGED,
            actor=request.user,
            patient=obj,
            detail={"where": "admin", "fields": sorted(changed), "added": not change},
        )

    @admin.display(description="Name", ordering="last_name")
    def full_name(self, obj: Patient) -> str:
        return obj.full_name

    @admin.display(description="NHS number", ordering="nhs_number")
    def nhs_number_for_display(self, obj: Patient) -> str:
        return obj.nhs_number_for_display

    @admin.display(description="Mobile", ordering="mobile")
    def mobile_for_display(self, obj: Patient) -> str:
        return obj.mobile_for_display


class _AgreementCounts(TypedDict):
    type_count: int
    location_count: int


@admin.register(SharingAgreement)
class SharingAgreementAdmin(OrganisationScopedAdmin):
    organisation_lookups = ("host", "partner")

    def _hosted_by_user(self, request: HttpRequest, obj: Model | None) -> bool:
        # The partner may read the agreement; only the host (or a superuser) changes or ends it.
        if obj is None or request.user.is_superuser:
            return True
        return cast(SharingAgreement, obj).host_id in organisation_ids_for(request.user, roles=ADMIN_ROLES)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_change_permission(request, obj) and self._hosted_by_user(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return super().has_delete_permission(request, obj) and self._hosted_by_user(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj: Model | None = None) -> list[str]:
        # Consent is given on the sharing page, by the partner's manager: admin shows who gave
        # it and never sets it. The two sides are fixed once offered, so an accepted agreement
        # can't be moved to an organisation that never accepted it.
        readonly = ["offered_by", "accepted_at", "accepted_by", "ended_by"]
        return readonly if obj is None else ["host", "partner", *readonly]

    def save_model(self, request: HttpRequest, obj: SharingAgreement, form: Any, change: bool) -> None:
        if not change and request.user.is_authenticated:
            obj.offered_by = request.user
        super().save_model(request, obj, form, change)

    list_display = ["host", "partner", "type_count", "location_count", "created_at", "accepted_at", "ended_at"]
    list_filter = ["host", "partner"]
    search_fields = ["host__name", "partner__name"]
    autocomplete_fields = ["host", "partner", "appointment_types", "locations"]
    list_select_related = ["host", "partner"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[WithAnnotations[SharingAgreement, _AgreementCounts]]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                type_count=Count("appointment_types", distinct=True), location_count=Count("locations", distinct=True)
            )
        )

    @admin.display(description="Appointment types", ordering="type_count")
    def type_count(self, obj: WithAnnotations[SharingAgreement, _AgreementCounts]) -> int:
        return obj.type_count

    @admin.display(description="Locations", ordering="location_count")
    def location_count(self, obj: WithAnnotations[SharingAgreement, _AgreementCounts]) -> int:
        return obj.location_count


@admin.register(BookingLink)
class BookingLinkAdmin(OrganisationScopedAdmin):
    """Links are made by sending a message; here admins look at them, revoke and unlock them."""

    list_display = ["reference", "patient", "appointment_type", "location", "status", "expires_at", "created_at"]
    list_filter = ["status", "organisation", "appointment_type"]
    search_fields = ["patient__first_name", "patient__last_name", "=patient__nhs_number", "appointment_type__name"]
    list_select_related = ["patient", "appointment_type", "location"]
    readonly_fields = [
        "reference",
        "organisation",
        "patient",
        "appointment_type",
        "location",
        "practitioner",
        "expires_at",
        "status",
        "failed_attempts",
        "created_by",
        "created_at",
        "first_opened_at",
        "last_opened_at",
        "open_count",
        "revoked_at",
    ]
    exclude = ["token_digest"]
    actions = ["revoke_links", "unlock_links"]
    # The token is not stored, so there is no page on the site to link to.
    view_on_site = False
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Reference")
    def reference(self, obj: BookingLink) -> str:
        return obj.reference

    @admin.action(description="Revoke the selected links")
    def revoke_links(self, request: HttpRequest, queryset: QuerySet[BookingLink]) -> None:
        revoked = sum(
            booking_link_revoke(link=link, actor=request.user)
            for link in queryset.select_related("patient", "organisation")
        )
        self.message_user(request, f"Revoked {revoked} link{'s' if revoked != 1 else ''}.", messages.SUCCESS)

    @admin.action(description="Unlock the selected locked links")
    def unlock_links(self, request: HttpRequest, queryset: QuerySet[BookingLink]) -> None:
        unlocked = sum(
            booking_link_unlock(link=link, actor=request.user)
            for link in queryset.select_related("patient", "organisation")
        )
        self.message_user(request, f"Unlocked {unlocked} link{'s' if unlocked != 1 else ''}.", messages.SUCCESS)


@admin.register(Appointment)
class AppointmentAdmin(OrganisationScopedAdmin):
    """Appointments are made by booking; here admins look at them and can cancel them.

    In scope for the host running the clinic and for the patient's own practice.
    """

    organisation_lookups = ("slot__location__organisation", "patient__organisation")

    list_display = ["reference", "patient", "slot_start", "appointment_type", "practitioner", "status", "booked_at"]
    list_filter = ["status", "outcome", "slot__location__organisation", "slot__appointment_type"]
    search_fields = ["patient__first_name", "patient__last_name", "=patient__nhs_number"]
    list_select_related = ["patient", "slot", "slot__appointment_type", "slot__practitioner"]
    readonly_fields = [
        "reference",
        "slot",
        "patient",
        "booking_link",
        "status",
        "booked_by",
        "booked_at",
        "cancelled_at",
        "cancellation_source",
        "cancellation_reason",
        "cancellation_detail",
        "cancelled_by",
        "replaces",
        "change_count",
        "outcome",
        "outcome_recorded_at",
        "outcome_recorded_by",
    ]
    actions = ["cancel_appointments"]
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @admin.display(description="Reference")
    def reference(self, obj: Appointment) -> str:
        return obj.reference

    @admin.display(description="Time", ordering="slot__start")
    def slot_start(self, obj: Appointment) -> datetime:
        return obj.slot.start

    @admin.display(description="Appointment type")
    def appointment_type(self, obj: Appointment) -> str:
        return obj.slot.appointment_type.name

    @admin.display(description="Practitioner")
    def practitioner(self, obj: Appointment) -> str:
        return obj.slot.practitioner.name

    @admin.action(description="Cancel the selected appointments (frees their slots)")
    def cancel_appointments(self, request: HttpRequest, queryset: QuerySet[Appointment]) -> None:
        cancelled = sum(
            appointment_cancel(appointment=appointment, actor=request.user)
            for appointment in queryset.select_related("patient", "booking_link", "patient__organisation")
        )
        self.message_user(
            request, f"Cancelled {cancelled} appointment{'s' if cancelled != 1 else ''}.", messages.SUCCESS
        )


@admin.register(AuditEvent)
class AuditEventAdmin(OrganisationScopedAdmin):
    """Read-only: the table is append-only in the database too."""

    list_display = ["created_at", "action", "actor", "organisation", "patient", "ip_address"]
    list_filter = ["action", "organisation"]
    search_fields = ["patient__first_name", "patient__last_name", "=patient__nhs_number", "actor__username"]
    list_select_related = ["actor", "organisation", "patient"]
    date_hierarchy = "created_at"
    show_full_result_count = False
    readonly_fields = ["detail_lines"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    @admin.display(description="Detail")
    def detail_lines(self, obj: AuditEvent) -> str:
        return format_html_join("", "<div>{}: {}</div>", sorted(obj.detail.items())) or "—"


class UserStaffMembershipInline(admin.TabularInline):
    model = StaffMembership
    extra = 0
    autocomplete_fields = ["organisation"]
    verbose_name = "organisation membership"


admin.site.unregister(User)


@admin.register(User)
class UserWithMembershipsAdmin(UserAdmin):
    inlines = [*UserAdmin.inlines, UserStaffMembershipInline]
