"""The user service: sign-up, login (issues the access JWT every service checks), the caller's profile."""
