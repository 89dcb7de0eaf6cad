"""Backends that find BPF hooks, programs and cgroup attachments: `local` (this machine, any network
namespace: netlink and bpf(2)) and `pod` (bpftool in a node's Cilium agent, through the Kubernetes API).
Both return the models of tshoot.netshow and tshoot.bpfprogs."""
