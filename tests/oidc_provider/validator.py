from typing import Any

from django.conf import settings
from oauth2_provider.oauth2_validators import OAuth2Validator


class Validator(OAuth2Validator):
    """Says who signed in: e-mail address (verified unless the test said otherwise) and username."""

    def get_additional_claims(self, request: Any) -> dict[str, Any]:
        user = request.user
        return {
            "email": user.email,
            "email_verified": user.username not in settings.SPEC["unverified"],
            "preferred_username": user.username,
        }
