"""What the integration announces; the review queue listens.

Both are sent inside the transaction that changed the mirror, so a receiver's writes commit or
roll back together with the change:

- ``run_status_changed``: one Run, with ``run``, ``old_status``, ``new_status`` and ``state_id``
  (Create Run, triage, a refresh of one Run);
- ``runs_status_changed``: many Runs at once (a reconcile chunk, a drain of the webhook inbox),
  with ``changes``, a list of ``RunChange``, so a receiver can do its work set-wise.
"""

from dataclasses import dataclass
from typing import Any

from django.dispatch import Signal

run_status_changed = Signal()
runs_status_changed = Signal()


@dataclass(frozen=True)
class RunChange:
    run: Any  # FlowRun (this module is imported by models' users; no import cycle)
    old_status: str
    new_status: str
    state_id: str
