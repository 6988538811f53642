"""Running stages across processes and machines (Ray)."""
