"""The payment service: charges reservations once each and announces the outcome."""
