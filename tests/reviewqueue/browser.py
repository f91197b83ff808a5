"""What a browser would submit for a rendered form: the successful controls of its HTML.

The round-trip tests submit exactly this, so they test the rendering (names, values, checked
and selected state, textareas) and not only the parsing.
"""

from html.parser import HTMLParser

from django.http import QueryDict


class _FormParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pairs: list[tuple[str, str]] = []
        self.select: dict | None = None
        self.textarea: dict | None = None

    def handle_starttag(self, tag: str, attrs_list: list) -> None:
        attrs = dict(attrs_list)
        name = attrs.get("name")
        disabled = "disabled" in attrs
        if tag == "input" and name and not disabled:
            kind = attrs.get("type", "text")
            if kind in ("submit", "button", "image", "reset", "file"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in attrs:
                    value = attrs.get("value")
                    self.pairs.append((name, "on" if value is None else value))
            else:
                value = attrs.get("value") or ""
                if kind in ("text", "search", "tel", "url", "email", "password"):
                    # HTML's value sanitization: a one-line input drops line breaks.
                    value = value.replace("\r", "").replace("\n", "")
                self.pairs.append((name, value))
        elif tag == "select" and name and not disabled:
            self.select = {"name": name, "multiple": "multiple" in attrs, "options": []}
        elif tag == "option" and self.select is not None:
            self.select["options"].append((attrs.get("value", ""), "selected" in attrs))
        elif tag == "textarea" and name and not disabled:
            self.textarea = {"name": name, "text": ""}

    def handle_data(self, data: str) -> None:
        if self.textarea is not None:
            self.textarea["text"] += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "select" and self.select is not None:
            chosen = [value for value, selected in self.select["options"] if selected]
            if not chosen and not self.select["multiple"] and self.select["options"]:
                chosen = [self.select["options"][0][0]]
            self.pairs += [(self.select["name"], value) for value in chosen]
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            text = self.textarea["text"]
            # HTML drops one newline right after <textarea>; browsers send CRLF line breaks.
            text = text[1:] if text.startswith("\n") else text
            self.pairs.append((self.textarea["name"], text.replace("\n", "\r\n")))
            self.textarea = None


def submitted(html: str) -> QueryDict:
    parser = _FormParser()
    parser.feed(html)
    data = QueryDict(mutable=True)
    for name, value in parser.pairs:
        data.appendlist(name, value)
    return data
