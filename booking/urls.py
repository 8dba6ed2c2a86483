from django.urls import path, re_path

from booking import views

app_name = "booking"

urlpatterns = [
    path("b/<str:token>", views.booking_link, name="link"),
    path("b/<str:token>/times", views.times, name="times"),
    path("b/<str:token>/confirm", views.confirm, name="confirm"),
    path("b/<str:token>/booked", views.booked, name="booked"),
    path("b/<str:token>/appointment.ics", views.appointment_ics, name="calendar"),
    # Whatever else starts /b/ gets the same "Link not found" page as an unknown token.
    re_path(r"^b/(?P<rest>[\s\S]*)\Z", views.link_not_found, name="not_found"),
]
