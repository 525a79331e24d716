"""Dependencies of the event service's routes."""

from ticketing.common.auth_deps import AdminUser, SaleManager
from ticketing.common.resources import SessionDep

__all__ = ["AdminUser", "SaleManager", "SessionDep"]
