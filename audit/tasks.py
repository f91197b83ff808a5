import logging

from celery import shared_task

from audit.services import verify_chain

logger = logging.getLogger(__name__)


@shared_task
def verify_trail() -> bool:
    """Beat's daily walk of the hash chain: an ERROR line (ids only) is the alert to act on."""
    checked, broken = verify_chain()
    if broken is None:
        logger.info("audit trail holds: %d events", checked)
        return True
    where = f"event {broken.event.pk}" if broken.event is not None else "its end"
    logger.error("audit trail broken at %s after %d good events: %s", where, checked, broken.reason)
    return False
