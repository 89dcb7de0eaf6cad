"""`tshoot walk`: the guide's "day in the life of a packet", decided step by step as the datapath decides."""
