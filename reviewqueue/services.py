"""State changes of the review queue."""

from django.contrib.auth import get_user_model

DEMO_PASSWORD = "flowdesk-demo"
# (username, first name, is flow admin): the roles' groups arrive with the review queue itself.
DEMO_USERS = [
    ("alice", "Alice", False),
    ("sam", "Sam", False),
    ("ada", "Ada", True),
]


def demo_users_ensure() -> list[str]:
    """Create the demo logins that ``make run`` prints (idempotent)."""
    User = get_user_model()
    created = []
    for username, first_name, is_admin in DEMO_USERS:
        user, was_created = User.objects.get_or_create(
            username=username, defaults={"first_name": first_name}
        )
        if was_created:
            user.set_password(DEMO_PASSWORD)
            user.is_staff = user.is_superuser = is_admin
            user.save()
            created.append(username)
    return created
