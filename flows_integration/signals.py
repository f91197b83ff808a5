"""What the integration announces; the review queue listens.

``run_status_changed`` is sent inside the transaction that changed the mirror, with
``run``, ``old_status``, ``new_status`` and ``state_id``, so a receiver's writes commit or roll
back together with the change.
"""

from django.dispatch import Signal

run_status_changed = Signal()
