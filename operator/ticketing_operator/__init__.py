"""The TicketEvent operator: runs a sale described as a Kubernetes resource."""
