"""Primitives every layer uses and none depends beyond: addresses, Cilium versions, C struct layouts,
BTF, bpftool's output, the two error types, durations (one notation for every --timeout), and what
both programs' command lines share (tshoot.core.command).

Nothing here imports the cluster, container or netlink libraries: `tshoot key` and `decode` start on these."""
