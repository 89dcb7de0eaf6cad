"""Reading maps: one entry decoded (decode), whole dumps decoded fast (bulk, forkmap), `--filter`
(filter), and the lookups, dumps and lists of `tshoot map` on one node or many (read, session).

Bytes come from a backend of tshoot.node; what the bytes mean comes from tshoot.maps."""
