from django.urls import path

from messaging.views import call_list, campaign_lists, campaigns, compose, messages, outbox, reports, templates

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
    # Campaigns: creating one and checking its list; its page (the funnel and the controls); the call list.
    path("campaigns/", campaign_lists.campaign_list, name="campaigns"),
    path("campaigns/new/", campaign_lists.campaign_new, name="campaign_new"),
    path("campaigns/<str:reference>/check/", campaign_lists.campaign_check, name="campaign_check"),
    path("campaigns/<str:reference>/rejected.csv", campaign_lists.campaign_rejected_csv, name="campaign_rejected_csv"),
    path("campaigns/<str:reference>/start/", campaign_lists.campaign_start, name="campaign_start"),
    path("campaigns/<str:reference>/", campaigns.campaign_page, name="campaign"),
    path("campaigns/<str:reference>/funnel/", campaigns.campaign_funnel, name="campaign_funnel"),
    path("campaigns/<str:reference>/pause/", campaigns.campaign_pause, name="campaign_pause"),
    path("campaigns/<str:reference>/resume/", campaigns.campaign_resume, name="campaign_resume"),
    path("campaigns/<str:reference>/stop/", campaigns.campaign_stop, name="campaign_stop"),
    path("campaigns/<str:reference>/revoke-links/", campaigns.campaign_links_revoke, name="campaign_links_revoke"),
    path("campaigns/<str:reference>/outcomes.csv", campaigns.campaign_outcomes_csv, name="campaign_outcomes_csv"),
    path("campaigns/<str:reference>/call-list/", call_list.call_list, name="campaign_call_list"),
    path("campaigns/<str:reference>/call-list/<int:entry>/", call_list.call_outcome, name="campaign_call_outcome"),
]
