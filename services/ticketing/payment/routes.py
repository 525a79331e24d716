"""HTTP routes: an administrator looks up the payment of a reservation."""

from typing import cast

from fastapi import APIRouter, HTTPException, Request, status

from ticketing.common.auth_deps import AdminUser
from ticketing.payment.models import PaymentPublic
from ticketing.payment.service import PaymentNotFound, PaymentService

router = APIRouter(tags=["payments"])


@router.get("/payments/{reservation_id}", summary="The payment of a reservation (admins)")
async def read_payment(reservation_id: str, _: AdminUser, request: Request) -> PaymentPublic:
    service = cast(PaymentService, request.app.state.payments)
    try:
        payment = await service.get(reservation_id)
    except PaymentNotFound as exc:
        raise HTTPException(status.HTTP_404_NOT_FOUND, exc.reason) from exc
    return PaymentPublic.model_validate(payment, from_attributes=True)
