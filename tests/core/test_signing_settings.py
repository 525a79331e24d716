"""Settings of the signing keys fail fast: production refuses the local-only keys and token, a
component that does not know where to find a signer's keys, a key that is not one, and a signer
started without its key."""

import pytest
from pydantic import ValidationError
from ticketing.common.settings import (
    LOCAL_ADMISSION_SIGNING_KEY,
    LOCAL_LOGIN_SIGNING_KEY,
    LOCAL_OPERATOR_TOKEN,
    CommonSettings,
    InsecureSettings,
    token_digest,
)
from ticketing.queue.app import create_app as create_queue_app
from ticketing.queue.settings import QueueSettings
from ticketing.user.app import create_app as create_user_app
from ticketing.user.settings import UserSettings
from ticketing_operator.settings import OperatorSettings

JWKS = {
    "login_jwks_url": "http://user/.well-known/jwks.json",
    "admission_jwks_url": "http://queue/.well-known/jwks.json",
}
A_KEY = "5e" * 32


@pytest.mark.parametrize(
    ("fields", "complaint"),
    [
        pytest.param({}, "TICKETING_LOGIN_JWKS_URL must say where", id="nowhere-to-verify"),
        pytest.param(
            {**JWKS, "login_signing_keys": f"{A_KEY},{LOCAL_LOGIN_SIGNING_KEY}"},
            "TICKETING_LOGIN_SIGNING_KEYS holds the local-only key",
            id="local-login-key",
        ),
        pytest.param(
            {**JWKS, "admission_signing_keys": LOCAL_ADMISSION_SIGNING_KEY},
            "TICKETING_ADMISSION_SIGNING_KEYS holds the local-only key",
            id="local-admission-key",
        ),
        pytest.param(
            {**JWKS, "operator_token_sha256": token_digest(LOCAL_OPERATOR_TOKEN)},
            "holds the local-only token",
            id="local-operator-token",
        ),
    ],
)
def test_production_refuses_local_keys_and_components_that_cannot_verify(
    fields: dict[str, str], complaint: str
) -> None:
    with pytest.raises(ValidationError, match=complaint):
        CommonSettings.model_validate({"environment": "production", **fields})


def test_a_signing_key_that_is_not_64_hex_characters_is_refused_at_startup() -> None:
    with pytest.raises(ValidationError, match="64 hex characters"):
        CommonSettings(login_signing_keys="not-a-key")  # type: ignore[arg-type]


def test_production_verifier_holds_no_key_and_a_signer_only_its_own() -> None:
    verifier = CommonSettings.model_validate({"environment": "production", **JWKS})
    signer = CommonSettings.model_validate(
        {"environment": "production", **JWKS, "login_signing_keys": A_KEY}
    )

    assert (verifier.signing_keys("login"), verifier.signing_keys("admission")) == ((), ())
    assert len(signer.signing_keys("login")) == 1
    assert signer.signing_keys("admission") == ()
    assert not verifier.operator_token_accepted(LOCAL_OPERATOR_TOKEN)


def test_signers_refuse_to_start_without_their_key() -> None:
    with pytest.raises(InsecureSettings, match="set TICKETING_LOGIN_SIGNING_KEYS"):
        create_user_app(UserSettings.model_validate({"environment": "production", **JWKS}))
    with pytest.raises(InsecureSettings, match="set TICKETING_ADMISSION_SIGNING_KEYS"):
        create_queue_app(QueueSettings.model_validate({"environment": "production", **JWKS}))


def test_production_operator_needs_its_own_token_to_call_the_services() -> None:
    services = {"operator_events_url": "http://event", "operator_seats_url": "http://seat"}
    with pytest.raises(ValidationError, match="TICKETING_OPERATOR_TOKEN must be set"):
        OperatorSettings.model_validate({"environment": "production", **JWKS, **services})
    own = OperatorSettings.model_validate(
        {"environment": "production", **JWKS, **services, "operator_token": "t" * 40}
    )
    assert own.service_token == "t" * 40
