"""`tshoot drops`: Cilium's own account of what its datapath dropped and forwarded.

counters.py reads `cilium_metrics` on every node (tshoot.maps.metrics names each counter as the node's
Cilium version does) and tells what increased between two reads; monitor.py streams `cilium-dbg monitor
--type drop -j` from every agent at once and names what its events number (identities, endpoints, addresses).
"""
