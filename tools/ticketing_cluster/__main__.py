import sys

from ticketing_cluster.cluster import main

sys.exit(main())
