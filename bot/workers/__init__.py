"""Workers: they claim work from the database (leases, compare-and-set) and act; requests only record."""
