"""Provider callbacks. Each checks the provider's signature; none needs a login or a CSRF token."""

from django.urls import path

from messaging import webhooks

app_name = "webhooks"

urlpatterns = [
    path("twilio/status/<str:reference>/", webhooks.twilio_status, name="twilio_status"),
    path("twilio/inbound/", webhooks.twilio_inbound, name="twilio_inbound"),
    path("anymail/<slug:esp>/tracking/", webhooks.anymail_tracking, name="anymail_tracking"),
]
