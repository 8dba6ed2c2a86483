from django.urls import path

from messaging.views import compose, messages, outbox, reports, templates

app_name = "messaging"

urlpatterns = [
    path("messages/", messages.message_list, name="list"),
    path("dev/outbox/", outbox.dev_outbox, name="dev_outbox"),
    path("reports/attendance/", reports.attendance, name="attendance_report"),
    path("reports/attendance.csv", reports.attendance_csv, name="attendance_report_csv"),
    path("templates/", templates.template_list, name="templates"),
    path("templates/new/", templates.template_edit, name="template_add"),
    path("templates/<int:pk>/", templates.template_edit, name="template_edit"),
    path("messages/new/", compose.compose, name="compose"),
    path("messages/new/patients/", compose.patient_results, name="patient_results"),
    path("messages/new/count/", compose.message_count, name="count"),
    path("messages/new/link/", compose.link_fields, name="link_fields"),
    path("messages/<str:reference>/", messages.message_detail, name="detail"),
    path("messages/links/<str:reference>/revoke/", messages.link_revoke, name="link_revoke"),
    path("messages/links/<str:reference>/unlock/", messages.link_unlock, name="link_unlock"),
]
