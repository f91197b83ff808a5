"""Plain Django forms of the review queue (the schema forms live in ``schema_forms/``)."""

from typing import Any

from django import forms

from reviewqueue.models import StaffPreferences, available_time_zones


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
