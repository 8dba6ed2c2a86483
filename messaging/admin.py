from __future__ import annotations

from django.contrib import admin
from django.db.models import Model
from django.http import HttpRequest

from booking.admin_scope import OrganisationScopedAdmin
from messaging.forms import ReminderTemplateForm
from messaging.models import Message, MessageStatusEvent, MessageTemplate, ReminderTemplate, SenderProfile


@admin.register(MessageTemplate)
class MessageTemplateAdmin(OrganisationScopedAdmin):
    list_display = ["name", "organisation", "is_active"]
    list_filter = ["is_active", "organisation"]
    search_fields = ["name", "body", "organisation__name"]
    autocomplete_fields = ["organisation"]
    list_select_related = ["organisation"]


@admin.register(SenderProfile)
class SenderProfileAdmin(OrganisationScopedAdmin):
    """Which Twilio Messaging Service or sender ID an organisation's texts come from."""

    list_display = ["organisation", "twilio_messaging_service_sid", "sms_sender_id", "email_reply_to"]
    search_fields = ["organisation__name", "sms_sender_id"]
    autocomplete_fields = ["organisation"]
    list_select_related = ["organisation"]


@admin.register(ReminderTemplate)
class ReminderTemplateAdmin(OrganisationScopedAdmin):
    """An organisation's reminder text (without one, the default in messaging/models.py is used)."""

    form = ReminderTemplateForm
    list_display = ["organisation"]
    search_fields = ["organisation__name", "body"]
    autocomplete_fields = ["organisation"]
    list_select_related = ["organisation"]


class MessageStatusEventInline(admin.TabularInline):
    model = MessageStatusEvent
    fields = readonly_fields = ("occurred_at", "status", "source", "provider_status", "error_code", "detail")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Message | None = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(OrganisationScopedAdmin):
    """Messages are written and sent on the staff pages; here they can only be read."""

    inlines = [MessageStatusEventInline]
    list_display = ["created_at", "patient", "channel", "status", "attempts", "organisation", "sent_by"]
    list_filter = ["status", "channel", "organisation"]
    search_fields = ["patient__first_name", "patient__last_name", "=patient__nhs_number", "to_address"]
    list_select_related = ["patient", "organisation", "sent_by"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False
