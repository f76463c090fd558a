"""Filters of the operator screens, and the Reprocess Failed Messages action."""

from __future__ import annotations

from django import forms

from connector.models import AuditEntry
from message_queue.models import Entity, Status
from setup_params.models import Profile

MAX_SELECTED_IDS = 1000


class DateInput(forms.DateInput):
    input_type = "date"


def profile_field() -> forms.ModelChoiceField:
    return forms.ModelChoiceField(
        Profile.objects.order_by("name"), to_field_name="name", required=False,
        empty_label="All profiles", label="Profile",
    )


def entity_field() -> forms.ChoiceField:
    return forms.ChoiceField(choices=[("", "All entities"), *Entity.choices], required=False,
                             label="Entity")


class MessageIdsField(forms.Field):
    """The ticked rows' checkboxes: `ids=4&ids=7` → [4, 7]."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value) -> list[int]:
        try:
            return [int(number) for number in value or []]
        except (TypeError, ValueError):
            raise forms.ValidationError("Message ids are whole numbers.") from None


class DateRangeMixin:
    """A `<prefix>_from` / `<prefix>_to` pair whose start may not come after its end."""

    date_range: tuple[str, str]

    def clean(self):
        cleaned = super().clean()
        start, end = (cleaned.get(name) for name in self.date_range)
        if start and end and start > end:
            self.add_error(self.date_range[1], "The end date is before the start date.")
        return cleaned


class MessageSearchForm(DateRangeMixin, forms.Form):
    date_range = ("received_from", "received_to")

    sku = forms.CharField(label="SKU", max_length=255, required=False)
    entity = entity_field()
    status = forms.ChoiceField(choices=[("", "Any status"), *Status.choices], required=False,
                               label="Status")
    received_from = forms.DateField(label="Received from", required=False, widget=DateInput)
    received_to = forms.DateField(label="Received to", required=False, widget=DateInput)
    profile = profile_field()


class FailedMessagesFilterForm(DateRangeMixin, forms.Form):
    date_range = ("failed_from", "failed_to")

    entity = entity_field()
    sku = forms.CharField(label="SKU", max_length=255, required=False)
    error = forms.CharField(label="Error text", max_length=200, required=False,
                            widget=forms.TextInput(attrs={"placeholder": "part of the last error"}))
    failed_from = forms.DateField(label="Failed from", required=False, widget=DateInput)
    failed_to = forms.DateField(label="Failed to", required=False, widget=DateInput)
    profile = profile_field()


class ReprocessFailedActionForm(forms.Form):
    """Reprocess or dismiss the selected rows, or all rows that match the filter."""

    ACTIONS = [("reprocess", "Reprocess"), ("dismiss", "Dismiss")]
    SCOPES = [("selected", "Selected messages"), ("matching", "All messages that match")]

    action = forms.ChoiceField(choices=ACTIONS)
    scope = forms.ChoiceField(choices=SCOPES)
    # Any id is acceptable here: the view keeps only the ones still failed or skipped that
    # match the filter (another operator may have acted on some meanwhile).
    ids = MessageIdsField(required=False)
    reason = forms.CharField(max_length=500, required=False, strip=True)

    def clean_ids(self) -> list[int]:
        ids = self.cleaned_data["ids"]
        if len(ids) > MAX_SELECTED_IDS:
            raise forms.ValidationError(
                f"Select at most {MAX_SELECTED_IDS} messages, or use “all that match”."
            )
        return ids

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("scope") == "selected" and not cleaned.get("ids"):
            raise forms.ValidationError("Select at least one message.")
        if cleaned.get("action") == "dismiss" and not cleaned.get("reason"):
            self.add_error("reason", "Give a reason for dismissing the messages.")
        return cleaned


class AuditLogFilterForm(forms.Form):
    actor = forms.ChoiceField(label="User", required=False)
    profile = profile_field()
    kind = forms.ChoiceField(choices=[("", "Any kind"), *AuditEntry.Kind.choices],
                             required=False, label="Kind")

    def __init__(self, *args, actors: list[str] = (), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["actor"].choices = [("", "Anyone"), *((actor, actor) for actor in actors)]
