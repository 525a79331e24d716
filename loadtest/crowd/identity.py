"""Who the people in the crowd are, and how each gets a login token (see Scenario.login)."""

from dataclasses import dataclass

from ticketing.common.settings import CommonSettings
from ticketing.common.tokens import Principal, issue_access_token

PASSWORD = "load-test-password-1"


@dataclass(frozen=True)
class Person:
    run_id: str
    index: int

    @property
    def email(self) -> str:
        return f"buyer-{self.run_id}-{self.index}@load.example.org"

    @property
    def user_id(self) -> str:
        return f"load-{self.run_id}-{self.index}"


def minted_token(settings: CommonSettings, person: Person) -> str:
    """A login token signed with the platform's key, as the user service would issue it."""
    return issue_access_token(settings, Principal(person.user_id, person.email, ()))
