from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

from hero import views
from hero.sign_in import LimitedPasswordResetView

admin.site.site_header = "Self-booking links administration"
admin.site.site_title = "Self-booking links admin"
admin.site.index_title = "Practice set-up"

urlpatterns = [
    path("admin/", admin.site.urls),
    # Before Django's own, which it replaces: password reset requests are limited (hero/sign_in.py).
    path("accounts/password_reset/", LimitedPasswordResetView.as_view(), name="password_reset"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("webhooks/", include("messaging.webhook_urls")),
    path("", views.home, name="home"),
    path("", include("messaging.urls")),
    path("", include("booking.urls")),
]
