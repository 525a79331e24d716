module ticketing.dev/cluster

go 1.22
