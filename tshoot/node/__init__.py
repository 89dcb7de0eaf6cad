"""Reaching a node: where map bytes and BPF objects come from. `local` reads this machine (libbpf, bpf(2)),
`agent` asks a node's Cilium agent (bpftool through the Kubernetes API exec stream); both answer the
questions of tshoot.node.backend."""
