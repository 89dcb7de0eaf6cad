"""`cilium-dbg status` output as agents print it, for the check's parser and the test API server's exec.

The layouts are those of real outputs quoted in Cilium's issue tracker (the kind cluster of
cilium/cilium#35542 on 1.17-dev, the controller table of #15094, the unreachable nodes of #33697, the
"daemon unreachable" line of microk8s#604); node names and counts are the lab's.
"""

from __future__ import annotations


def healthy(node: str = "k8s-guide-worker2", nodes: int = 3, controllers: int = 40, version: str = "1.19.4") -> str:
    return f"""KVStore:                 Disabled
Kubernetes:              Ok   1.34 (v1.34.8) [linux/amd64]
Kubernetes APIs:         ["EndpointSliceOrEndpoint", "cilium/v2::CiliumClusterwideNetworkPolicy", "cilium/v2::CiliumEndpoint", "cilium/v2::CiliumNetworkPolicy", "cilium/v2::CiliumNode", "core/v1::Namespace", "core/v1::Pods", "core/v1::Service", "networking.k8s.io/v1::NetworkPolicy"]
KubeProxyReplacement:    True   [eth0    172.18.0.4 fc00:f853:ccd:e793::4 fe80::42:acff:fe12:4 (Direct Routing)]
Host firewall:           Disabled
SRv6:                    Disabled
CNI Chaining:            none
CNI Config file:         successfully wrote CNI configuration file to /host/etc/cni/net.d/05-cilium.conflist
Cilium:                  Ok   {version} (v{version}-a0f2c3d4)
NodeMonitor:             Listening for events on 4 CPUs with 64x4096 of shared memory
Cilium health daemon:    Ok   
IPAM:                    IPv4: 5/254 allocated from 10.244.2.0/24, 
IPv4 BIG TCP:            Disabled
IPv6 BIG TCP:            Disabled
BandwidthManager:        Disabled
Routing:                 Network: Tunnel [vxlan]   Host: BPF
Attach Mode:             TCX
Device Mode:             veth
Masquerading:            BPF   [eth0]   10.244.0.0/16 [IPv4: Enabled, IPv6: Disabled]
Controller Status:       {controllers}/{controllers} healthy
Proxy Status:            OK, ip 10.244.2.17, 0 redirects active on ports 10000-20000, Envoy: embedded
Global Identity Range:   min 256, max 65535
Hubble:                  Disabled
Encryption:              Disabled        
Cluster health:          {nodes}/{nodes} reachable   (2026-08-02T19:52:07Z)
Name                     IP              Node   Endpoints
Modules Health:          Stopped(0) Degraded(0) OK(58)
"""


def failing_controllers(node: str = "k8s-guide-worker") -> str:
    return healthy(node).replace("Controller Status:       40/40 healthy", """Controller Status:       39/40 healthy
  Name                                  Last success   Last error   Count   Message
  cilium-health-ep                      23m36s ago     49s ago      29      Get "http://10.244.1.248:4240/hello": dial tcp 10.244.1.248:4240: connect: connection refused""")


def unreachable_nodes(node: str = "k8s-guide-control-plane") -> str:
    return healthy(node).replace("Cluster health:          3/3 reachable   (2026-08-02T19:52:07Z)",
                                 """Cluster health:          1/3 reachable   (2026-08-02T19:52:07Z)
  Name                      IP           Node          Endpoints
  k8s-guide-worker          172.18.0.3   unreachable   unreachable
  k8s-guide-worker2         172.18.0.4   unreachable   unreachable""")


def health_daemon_unreachable(node: str = "k8s-guide-worker") -> str:
    return (healthy(node).replace("Cilium health daemon:    Ok   ", "Cilium health daemon:    Warning   ")
            .replace("Cluster health:          3/3 reachable   (2026-08-02T19:52:07Z)",
                     "Cluster health:          Warning   cilium-health daemon unreachable"))


def kube_proxy_replacement_off(node: str = "k8s-guide-worker") -> str:
    return healthy(node).replace("KubeProxyReplacement:    True   [eth0", "KubeProxyReplacement:    False   [eth0")


# The guide's own (Cilium 1.10, `cilium status` in the agent): "make cilium-check | grep health".
GUIDE_1_10 = """KVStore:                Ok   Disabled
Kubernetes:             Ok   1.21 (v1.21.1) [linux/amd64]
KubeProxyReplacement:   Strict   [eth0 172.18.0.4 (Direct Routing)]
Cilium:                 Ok   1.10.3 (v1.10.3-4145278)
NodeMonitor:            Listening for events on 8 CPUs with 64x4096 of shared memory
Cilium health daemon:   Ok
IPAM:                   IPv4: 4/254 allocated from 10.0.0.0/24,
Controller Status:      40/40 healthy
Proxy Status:           OK, ip 10.0.0.215, 0 redirects active on ports 10000-20000
Hubble:                 Ok   Current/Max Flows: 4095/4095 (100.00%), Flows/s: 5.03   Metrics: Disabled
Cluster health:         3/3 reachable   (2021-08-02T19:52:07Z)
"""
