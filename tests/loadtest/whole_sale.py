"""A whole sale as the audit (loadtest.integrity) counts it: every seat sold, none twice, no
reservation lost, every confirmation with its ticket. The sale tests compare against it,
whichever crowd played the sale."""

from loadtest.report.record import Integrity

FIGURES = {"tickets", "oversold", "lost_reservations", "confirmed_without_ticket"}


def sale_figures(integrity: Integrity) -> dict[str, int]:
    return integrity.model_dump(include=FIGURES)


def whole_sale(seats: int) -> dict[str, int]:
    return {"tickets": seats, "oversold": 0, "lost_reservations": 0, "confirmed_without_ticket": 0}
