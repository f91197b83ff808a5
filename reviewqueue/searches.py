"""Search terms kept out of URLs: people search the queue and the Runs list by patient name and
external id, and a URL's query string reaches every access log (gunicorn, the development
server) and the ``Referer`` of the page's next requests.

The filter form is posted; the view keeps the term in the session under a short random token and
redirects to the page with the other filters and ``search=<token>`` in its URL. So back and
forward, paging and the live refresh of the rows keep the search, two tabs keep their own, and
the term leaves with the session (a signed-out or copied URL names no one). A session keeps its
last ``KEPT`` searches.
"""

import secrets
from collections.abc import Mapping

from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest, HttpResponseRedirect, QueryDict
from django.shortcuts import redirect, resolve_url

PARAM = "search"
KEPT = 20
_SESSION_KEY = "searches"
# Never carried into the page's URL: the term itself, and what a new search starts afresh.
_LEFT_OUT = {"q", PARAM, "page", "since", "csrfmiddlewaretoken"}


def search_redirect(request: HttpRequest, *, to: str) -> HttpResponseRedirect:
    """The page ``to`` with the posted filters (or those of a URL that still names a term in
    ``q``) in its query string and the term by its token."""
    source = request.POST if request.method == "POST" else request.GET
    query = QueryDict(mutable=True)
    for name, values in source.lists():
        kept = [value for value in values if value]
        if name not in _LEFT_OUT and kept:
            query.setlist(name, kept)
    text = source.get("q", "").replace("\x00", "").strip()[:100]
    if text:
        query[PARAM] = _remember(request.session, text)
    url = resolve_url(to)
    return redirect(f"{url}?{query.urlencode()}" if query else url)


def search_query(request: HttpRequest) -> tuple[dict[str, str], bool]:
    """The page's filters as the selectors read them, ``q`` being the term its token stands
    for; and whether the URL names a token this session does not know (signed in again since,
    or another person's URL): the page then says the search is gone rather than quietly showing
    everything."""
    query = {name: str(value) for name, value in request.GET.items() if name != "q"}
    token = query.pop(PARAM, "")
    text = _searches(request.session).get(token) if token else None
    if text:
        query["q"] = text
    return query, bool(token) and not text


def _searches(session: SessionBase) -> Mapping[str, str]:
    found = session.get(_SESSION_KEY)
    return found if isinstance(found, dict) else {}


def _remember(session: SessionBase, text: str) -> str:
    searches = dict(_searches(session))
    token = next((token for token, term in searches.items() if term == text), None)
    if token is None:
        token = secrets.token_urlsafe(6)
    else:
        del searches[token]  # to the end: the latest searches are the ones kept
    searches[token] = text
    session[_SESSION_KEY] = dict(list(searches.items())[-KEPT:])
    return token


def query_without(query: QueryDict, *names: str) -> str:
    """A list page's query string less ``names`` (its page, its poll's time), for the links
    and polls that set them afresh."""
    kept = query.copy()
    for name in names:
        kept.pop(name, None)
    return kept.urlencode()
