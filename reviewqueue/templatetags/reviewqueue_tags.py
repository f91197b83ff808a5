"""Template helpers of the review queue."""

from datetime import datetime
from typing import Any

from django import template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

from reviewqueue import present

register = template.Library()

# CommonMark with raw HTML off: tags in a template's instructions are shown as text, and
# markdown-it refuses javascript:, vbscript: and data: links by itself.
_markdown = MarkdownIt("commonmark", {"html": False, "linkify": False})


@register.filter
def markdown(text: str) -> SafeString:
    """Callback instructions (Markdown, written by template authors) as safe HTML."""
    return mark_safe(_markdown.render(text or ""))  # noqa: S308  # html is off: output is escaped


@register.filter
def minutes_left(moment: datetime | None) -> int:
    """Whole minutes until ``moment`` (0 once it has passed), for a lease's remaining time."""
    if moment is None:
        return 0
    return max(0, int((moment - timezone.now()).total_seconds() // 60))


@register.filter
def seconds_left(moment: datetime | None) -> int:
    """Whole seconds until ``moment`` (0 once it has passed): the page counts a claim down
    from it with its own clock, so the server's and the browser's clocks need not agree."""
    if moment is None:
        return 0
    return max(0, int((moment - timezone.now()).total_seconds()))


# Values for people: every value, moment and due time a page shows goes through reviewqueue/present.


@register.filter
def shown(data: Any, schema: Any = None) -> str:
    """A JSON value as people read it: `{{ value|shown:schema }}`."""
    return present.value(data, schema)


@register.filter
def moment(value: datetime | None) -> str:
    """`Dec 5, 14:03 EST`: in the person's time zone, naming it."""
    return present.moment(value)


@register.filter
def due(value: datetime | None) -> str:
    """`due in 3 h`, `overdue 20 min`."""
    return present.due(value)


@register.filter
def age(value: datetime | None) -> str:
    """`3 h 20 min`: how long since ``value``."""
    return present.age(value)


@register.filter
def step_title(steps: Any, item: Any) -> str:
    """`{{ steps|step_title:item }}`: the item's step by its title (selectors.Steps)."""
    return str(steps.title(item))
