"""What is attached where on a node: BPF hooks per interface (netshow), programs and cgroups (programs),
found locally (hooks_local: netlink and bpf(2)) or through the agent (hooks_agent: bpftool through
tshoot.node.agent). Which of the two: tshoot.node.choice."""
