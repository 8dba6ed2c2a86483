from django.urls import path, re_path

from booking.views import manage, outcomes, patient, staff

app_name = "booking"

urlpatterns = [
    # Staff
    path("appointments/", staff.appointments, name="appointments"),
    path("appointments/<str:reference>/outcome/", outcomes.appointment_outcome, name="appointment_outcome"),
    path("appointments/<str:reference>/session-attended/", outcomes.session_attended, name="session_attended"),
    path("appointments/<str:reference>/cancel/", staff.cancel_appointment, name="cancel_appointment"),
    path("audit/", staff.audit_trail, name="audit"),
    path("sharing/", staff.sharing, name="sharing"),
    path("sharing/<int:pk>/accept/", staff.sharing_accept, name="sharing_accept"),
    path("sharing/<int:pk>/decline/", staff.sharing_decline, name="sharing_decline"),
    path("sharing/<int:pk>/end/", staff.sharing_end, name="sharing_end"),
    # Patients: the short link and the pages behind it
    path("b/<str:token>", patient.booking_link, name="link"),
    path("b/<str:token>/times", patient.times, name="times"),
    path("b/<str:token>/confirm", patient.confirm, name="confirm"),
    path("b/<str:token>/decline", patient.decline, name="decline"),
    path("b/<str:token>/booked", manage.booked, name="booked"),
    path("b/<str:token>/cancel", manage.cancel, name="cancel"),
    path("b/<str:token>/cancelled", manage.cancelled, name="cancelled"),
    path("b/<str:token>/change", manage.change, name="change"),
    path("b/<str:token>/change/confirm", manage.change_confirm, name="change_confirm"),
    path("b/<str:token>/changed", manage.changed, name="changed"),
    path("b/<str:token>/appointment.ics", patient.appointment_ics, name="calendar"),
    # Whatever else starts /b/ gets the same "Link not found" page as an unknown token.
    re_path(r"^b/(?P<rest>[\s\S]*)\Z", patient.link_not_found, name="not_found"),
]
