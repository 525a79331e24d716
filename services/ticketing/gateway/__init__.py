"""The local one-origin gateway: `python -m ticketing gateway` routes paths to services, as the
chart's Ingress does in a cluster, so the web page and the APIs share one origin."""
