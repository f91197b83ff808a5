"""Template helpers of the review queue."""

from datetime import datetime

from django import template
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

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
