from django.urls import path

from messaging import outbox, views

app_name = "messaging"

urlpatterns = [
    path("messages/", views.message_list, name="list"),
    path("dev/outbox/", outbox.dev_outbox, name="dev_outbox"),
    path("appointments/", views.appointments, name="appointments"),
    path("audit/", views.audit_trail, name="audit"),
    path("templates/", views.template_list, name="templates"),
    path("sharing/", views.sharing, name="sharing"),
    path("sharing/<int:pk>/end/", views.sharing_end, name="sharing_end"),
    path("templates/new/", views.template_edit, name="template_add"),
    path("templates/<int:pk>/", views.template_edit, name="template_edit"),
    path("messages/new/", views.compose, name="compose"),
    path("messages/new/patients/", views.patient_results, name="patient_results"),
    path("messages/new/count/", views.message_count, name="count"),
    path("messages/new/link/", views.link_fields, name="link_fields"),
    path("messages/<str:reference>/", views.message_detail, name="detail"),
    path("messages/links/<str:reference>/revoke/", views.link_revoke, name="link_revoke"),
    path("messages/links/<str:reference>/unlock/", views.link_unlock, name="link_unlock"),
]
