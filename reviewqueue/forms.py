"""Plain Django forms of the review queue (the schema forms live in ``schema_forms/``)."""

from typing import Any

from django import forms
from django.contrib.auth import get_user_model

from reviewqueue import services
from reviewqueue.models import NotificationKind, StaffPreferences, available_time_zones


def time_zone_choices() -> list[tuple[str, str]]:
    """Blank (the site's zone) first, then every zone this server knows, by name."""
    zones = sorted(available_time_zones())
    return [("", "The site's time zone"), *((zone, zone.replace("_", " ")) for zone in zones)]


class PreferencesForm(forms.ModelForm):
    """A person's preferences, on their own page and in the admin: a list, never a typed name."""

    class Meta:
        model = StaffPreferences
        fields = ["time_zone"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["time_zone"]
        # The page explains the choice in its own words (#time-zone-now), with the time it is.
        field.widget = forms.Select(
            choices=time_zone_choices(), attrs={"aria-describedby": "time-zone-now"}
        )
        field.label = "Time zone"
        field.help_text = ""


class OwnPreferencesForm(PreferencesForm):
    """...and, on the person's own page, which notifications also come by e-mail (a link, never
    patient data). Kinds not in ``NotificationKind`` are refused."""

    email_notifications = forms.MultipleChoiceField(
        choices=NotificationKind.choices,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        label="Also e-mail me when…",
        error_messages={"invalid_choice": "Choose from the kinds in the list."},
    )

    class Meta(PreferencesForm.Meta):
        fields = ["time_zone", "email_notifications"]

    def clean_email_notifications(self) -> list[str]:
        # Stored in the order of the list, each once, whatever order the browser sent.
        chosen = set(self.cleaned_data["email_notifications"])
        return [kind for kind in NotificationKind.values if kind in chosen]


class DeclineForm(forms.Form):
    """A decline's input as posted. The rules (which codes, how long a note) are the service's
    (``services.item_decline``), which names the field an error belongs to."""

    code = forms.CharField(required=False, max_length=200, strip=True)
    text = forms.CharField(required=False, strip=True)


class PostponeForm(DeclineForm):
    """...and until when, typed in the person's own time zone (the active one, see
    ``config.middleware.time_zone``) as a browser's date-and-time field sends it."""

    until = forms.DateTimeField(
        required=False,
        input_formats=["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"],
        error_messages={"invalid": "Enter a date and a time, such as 2030-03-01 14:30."},
    )


class ItemIdsField(forms.Field):
    """The ids of the rows ticked in the queue list (``<input name="item">`` repeated)."""

    widget = forms.MultipleHiddenInput

    def to_python(self, value: Any) -> list[int]:
        values = value or []
        if not all(isinstance(v, str) and v.isdecimal() and len(v) < 12 for v in values):
            raise forms.ValidationError("Tick items in the list.")
        return sorted({int(v) for v in values})


class MoveForm(forms.Form):
    """A supervisor's bulk move as posted: which items (the ticked rows, or all matching the
    page's filter), to whom (a person's id, or ``queue``: back to the queue) and why. Who may
    take which item is the service's to say (``services.items_reassign_bulk``)."""

    scope = forms.ChoiceField(
        choices=[("ticked", "The ticked items"), ("all", "All matching this filter")],
        required=False,
    )
    # Not "items": a template reading form.errors.items would find the dict's method.
    item = ItemIdsField(required=False)
    to = forms.CharField(
        required=False,
        max_length=12,
        error_messages={"max_length": "Choose someone from the list."},
    )
    reason = forms.ChoiceField(
        choices=[("", "Choose a reason"), *services.MOVE_REASONS.items()],
        error_messages={
            "required": "Choose a reason.",
            "invalid_choice": "Choose one of the reasons in the list.",
        },
    )

    def __init__(self, *args: Any, page_size: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.page_size = page_size

    def clean_to(self) -> Any:
        value = self.cleaned_data["to"]
        if not value:
            raise forms.ValidationError("Choose who takes these items, or back to the queue.")
        if value == "queue":
            return None
        person = (
            get_user_model().objects.filter(pk=value, is_active=True).first()
            if value.isdecimal()
            else None
        )
        if person is None:
            raise forms.ValidationError("Choose someone from the list: that person is not known.")
        return person

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        cleaned["scope"] = cleaned.get("scope") or "ticked"
        items = cleaned.get("item") or []
        if cleaned["scope"] == "ticked" and "item" not in self.errors:
            if not items:
                self.add_error("item", "Tick the items to move, or choose all matching.")
            elif len(items) > self.page_size:
                # Never more ids than a page shows: more than that is "all matching", which
                # the server finds again itself.
                self.add_error(
                    "item", f"Tick at most {self.page_size}, or choose all matching this filter."
                )
        return cleaned
