"""`python -m ticketing_operator`: the operator, configured from TICKETING_* variables."""

from ticketing_operator.run import main

main()
