"""Domain errors, classified by what to do next: `retriable` tells the retry machinery whether
trying the same message again later can succeed, so it never has to list exception types."""


class DomainError(Exception):
    """A failure the platform understands; `reason` is safe to show to a client or an operator."""

    retriable: bool = False

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TemporaryError(DomainError):
    """Something we depend on is unavailable or busy; the same request can succeed later."""

    retriable = True


class PermanentError(DomainError):
    """The request itself is wrong; retrying it gives the same answer."""


class MalformedMessage(PermanentError):
    """A Kafka message that cannot be decoded into an envelope."""


def is_retriable(error: BaseException) -> bool:
    """Whether a failed message deserves another attempt.

    An error we do not recognise (a dropped connection, a deadlock) is retried: the retry ladder
    ends in the dead-letter topic anyway, so guessing "retriable" loses nothing.
    """
    if isinstance(error, DomainError):
        return error.retriable
    return True
