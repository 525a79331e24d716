"""The reservation service: holds seats, records reservations, and confirms or releases them."""
