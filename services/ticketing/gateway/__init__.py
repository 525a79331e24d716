"""The one-origin gateway: `python -m ticketing gateway` routes paths to services, locally and
behind the chart's Ingress, so the web page and the APIs share one origin."""
