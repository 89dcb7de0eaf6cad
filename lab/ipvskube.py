"""kube-proxy's ipvs mode: besides its KUBE-* iptables chains, a dummy interface holding every service IP.

kube-proxy (pkg/proxy/ipvs) binds each ClusterIP, external IP and load-balancer IP to `kube-ipvs0`, so that
the node takes service traffic in and hands it to the kernel's IPVS virtual servers. Its own clean-up
(CleanupLeftovers) flushes IPVS, deletes kube-ipvs0, the iptables chains, then its ipsets. A kind node has
`ip` but neither ipvsadm nor ipset: the interface goes here (the chains go with the iptables part), the
virtual servers and ipsets stay, which is said in the report. Without kube-ipvs0 the service IPs are no longer
the node's own, so IPVS no longer takes traffic arriving for them (from pods, from other nodes); only the
node's own connections still pass IPVS's local-out hook, and Cilium's socket LB has rewritten those at
connect() already.
"""

from __future__ import annotations

DEVICE = "kube-ipvs0"
LEFT_BEHIND = "IPVS virtual servers and ipsets stay: kind nodes have no ipvsadm or ipset"

# No process at all when the interface is not there (iptables and nftables modes): `test` is a builtin.
READ = f"[ -e /sys/class/net/{DEVICE} ] || exit 0\necho {DEVICE}\nip -o address show dev {DEVICE}"
REMOVE = f"ip link delete {DEVICE}"


def parse(text: str) -> list[str] | None:
    """READ's output: the service addresses on kube-ipvs0 (after the device's name, `ip -o address` lines:
    index, name, family, address/prefix), or None when there is no kube-ipvs0."""
    lines = text.splitlines()
    if not lines:
        return None
    return [line.split()[3] for line in lines[1:] if len(line.split()) > 3]
