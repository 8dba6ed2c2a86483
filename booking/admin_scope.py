"""Django admin for an organisation's own admins: they see and change only their organisations.

Superusers see everything. A member of staff with `is_staff` and an "admin" StaffMembership
gets the models below, narrowed to the organisations they administer: list pages, change and
delete pages (another organisation's object is a 404), foreign-key choices, the filter
sidebar's choices on relations (only what their own rows point at), autocomplete and
raw-id popups (both go through the related model's admin, so they are narrowed too), and
actions (they act on the narrowed queryset). Models not built on this class (users, groups,
memberships, task results) stay with Django's own permissions, which these admins don't have.
"""

from __future__ import annotations

from functools import reduce
from operator import or_
from typing import TYPE_CHECKING, Any, NoReturn

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.db.models import ForeignKey, ManyToManyField, Model, Q, QuerySet
from django.db.models.options import Options
from django.forms import ModelChoiceField, ModelMultipleChoiceField
from django.http import Http404, HttpRequest

from booking.access import ADMIN_ROLES, organisation_ids_for

if TYPE_CHECKING:
    from django.contrib.admin.options import _ListFilterT
    from django.utils.datastructures import _ListOrTuple


class OrganisationScopedAdmin(admin.ModelAdmin):
    # Paths from the model to an Organisation; an object is in scope when any of them is one of
    # the user's. "pk" means the model is Organisation itself.
    organisation_lookups: tuple[str, ...] = ("organisation",)

    def _is_organisation_admin(self, request: HttpRequest) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and organisation_ids_for(user, roles=ADMIN_ROLES))

    def _scope(self, request: HttpRequest) -> Q:
        ids = organisation_ids_for(request.user, roles=ADMIN_ROLES)
        return reduce(or_, (Q(**{f"{lookup}__in": ids}) for lookup in self.organisation_lookups))

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        if not self._is_organisation_admin(request):
            return queryset.none()
        scoped = queryset.filter(self._scope(request))
        # Lookups through many-to-many or reverse relations can repeat rows.
        return scoped.distinct() if any("__" in lookup for lookup in self.organisation_lookups) else scoped

    def _in_scope(self, request: HttpRequest, obj: Model | None) -> bool:
        return obj is None or self.get_queryset(request).filter(pk=obj.pk).exists()

    def has_module_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or self._is_organisation_admin(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if request.user.is_superuser:
            return super().has_view_permission(request, obj)
        return self._is_organisation_admin(request) and self._in_scope(request, obj)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return request.user.is_superuser or self._is_organisation_admin(request)

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if request.user.is_superuser:
            return super().has_change_permission(request, obj)
        return self._is_organisation_admin(request) and self._in_scope(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        if request.user.is_superuser:
            return super().has_delete_permission(request, obj)
        return self._is_organisation_admin(request) and self._in_scope(request, obj)

    def get_list_filter(self, request: HttpRequest) -> _ListOrTuple[_ListFilterT]:
        filters = super().get_list_filter(request)
        if request.user.is_superuser:
            return filters
        # Django's filter on a relation lists every row of the related table (every
        # organisation's locations, types, practitioners); list only those the admin's own
        # rows point at.
        return [self._only_in_scope(entry) for entry in filters]

    def _only_in_scope(self, entry: _ListFilterT) -> _ListFilterT:
        if isinstance(entry, str) and get_fields_from_path(self.model, entry)[-1].is_relation:
            return (entry, admin.RelatedOnlyFieldListFilter)
        return entry

    def _get_obj_does_not_exist_redirect(self, request: HttpRequest, opts: Options[Any], object_id: str) -> NoReturn:
        # Django redirects to the admin index for a missing object; for another organisation's
        # object that would say "doesn't exist" with a 302. A plain 404 says nothing either way.
        raise Http404("Not found.")

    def _narrow(
        self, db_field: ForeignKey[Any, Any] | ManyToManyField[Any, Any], request: HttpRequest, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        if request.user.is_superuser:
            return kwargs
        related_admin = self.admin_site._registry.get(db_field.related_model)
        if isinstance(related_admin, OrganisationScopedAdmin):
            kwargs["queryset"] = related_admin.get_queryset(request)
        return kwargs

    def formfield_for_foreignkey(
        self, db_field: ForeignKey[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelChoiceField[Any] | None:
        return super().formfield_for_foreignkey(db_field, request, **self._narrow(db_field, request, kwargs))

    def formfield_for_manytomany(
        self, db_field: ManyToManyField[Any, Any], request: HttpRequest, **kwargs: Any
    ) -> ModelMultipleChoiceField[Any] | None:
        return super().formfield_for_manytomany(db_field, request, **self._narrow(db_field, request, kwargs))
