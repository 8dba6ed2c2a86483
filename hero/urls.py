from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from hero import views

admin.site.site_header = "Self-booking links administration"
admin.site.site_title = "Self-booking links admin"
admin.site.index_title = "Practice set-up"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("webhooks/", include("messaging.webhook_urls")),
    path("", views.home, name="home"),
    path("", include("messaging.urls")),
    path("", include("booking.urls")),
]
