"""A Sohar-like Flows API that keeps its Runs, for tests of what only Sohar's API shows.

It serves what Sohar documents and nothing of ours: Create, Get and Update Run and the token,
no ``stateId``, template or version on Get Run, no template endpoints. Each Run walks a scripted
list of pauses: Create Run leaves it PENDING at the first, each Update Run answers the pause it
waits at and moves it to the next, and after the last it is COMPLETE with every answer in its
output. ``inputs`` records which pause received which input, so a test can see an answer land
on the wrong pause.

Faults are scripted as with ``FaultyServer``; ``applied_then(behaviour)`` lets an Update Run be
applied and its reply be lost (dropped, reset, hung).
"""

import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from flows_integration import client as flows_client
from tests.flows_integration.faulty_server import (
    CLIENT_ID,
    CLIENT_SECRET,
    Behaviour,
    FaultyServer,
    Recorded,
)


@dataclass
class ScriptedRun:
    pauses: list[str]
    at: int = 0
    inputs: list[tuple[str, dict]] = field(default_factory=list)

    @property
    def status(self) -> str:
        return "PENDING" if self.at < len(self.pauses) else "COMPLETE"

    @property
    def waiting_at(self) -> str | None:
        return self.pauses[self.at] if self.at < len(self.pauses) else None


class SoharLikeServer(FaultyServer):
    def __init__(self, pauses: list[str], port: int = 0) -> None:
        super().__init__(port)
        self.pauses = pauses
        self.runs: dict[str, ScriptedRun] = {}
        self._runs_lock = threading.Lock()

    def __enter__(self) -> "SoharLikeServer":
        self.start()
        return self

    def start_run(self, run_id: str | None = None) -> str:
        """A Run that another system started: PENDING at the first pause."""
        run_id = run_id or str(uuid.uuid4())
        with self._runs_lock:
            self.runs[run_id] = ScriptedRun(list(self.pauses))
        return run_id

    def apply_update(self, run_id: str, answer: dict) -> ScriptedRun | None:
        with self._runs_lock:
            run = self.runs.get(run_id)
            if run is None or run.waiting_at is None:
                return None
            run.inputs.append((run.waiting_at, answer))
            run.at += 1
            return run

    def answer_of(self, run_id: str) -> dict[str, Any]:
        """Get Run's body, as Sohar documents it: no stateId."""
        with self._runs_lock:
            run = self.runs[run_id]
            output = dict(run.inputs) if not run.waiting_at else {}
            return {"flowRunId": run_id, "status": run.status, "output": output}

    def default(self, handler: Any, request: Recorded) -> None:
        path = request.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        if path != "/oauth/token" and self._authorized(request):
            match request.method, parts:
                case "POST", ["v1", "flows", _template_id, "runs"]:
                    handler.answer_json(201, {"flowRunId": self.start_run()})
                    return
                case "GET", ["v1", "flow-runs", run_id] if run_id in self.runs:
                    handler.answer_json(200, self.answer_of(run_id))
                    return
                case "PUT", ["v1", "flow-runs", run_id] if run_id in self.runs:
                    run = self.apply_update(run_id, request.json["input"])
                    if run is None:  # undocumented by Sohar; our engine's answer
                        handler.answer_json(409, {"error": "invalid_request_error"})
                    else:
                        handler.answer_json(200, {"flowRunId": run_id, "status": "IN_PROGRESS"})
                    return
        super().default(handler, request)


def applied_then(lose_reply: Behaviour) -> Behaviour:
    """Apply the Update Run, then lose its reply the way ``lose_reply`` does."""

    def behave(handler: Any, request: Recorded) -> None:
        server: SoharLikeServer = handler.server.owner
        run_id = request.path.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
        server.apply_update(run_id, request.json["input"])
        lose_reply(handler, request)

    return behave


@contextmanager
def flowdesk_pointed_at(server: SoharLikeServer, settings: Any) -> Iterator[SoharLikeServer]:
    """Flowdesk's client talking to ``server`` (pytest-django's ``settings`` put back after)."""
    with server:
        settings.FLOWS_API_URL = server.url
        settings.FLOWS_CLIENT_ID = CLIENT_ID
        settings.FLOWS_CLIENT_SECRET = CLIENT_SECRET
        flows_client.reset_client()
        try:
            yield server
        finally:
            flows_client.reset_client()
