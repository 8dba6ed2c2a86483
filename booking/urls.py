from django.urls import path

from booking import views

app_name = "booking"

urlpatterns = [
    path("b/<str:token>", views.booking_link, name="link"),
]
