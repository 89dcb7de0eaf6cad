"""A kube-proxy (iptables mode) ruleset as a kind node really holds it, beside rules that must survive.

The KUBE-* part follows what kube-proxy 1.28+ and kubelet write on a kind node with two services (kube-dns
with two endpoints, a NodePort web service): KUBE-SERVICES, KUBE-NODEPORTS, KUBE-SVC-*, KUBE-SEP-*, KUBE-EXT-*,
KUBE-POSTROUTING, KUBE-MARK-MASQ, KUBE-FIREWALL, KUBE-FORWARD, KUBE-PROXY-FIREWALL, KUBE-EXTERNAL-SERVICES,
KUBE-KUBELET-CANARY, KUBE-PROXY-CANARY, KUBE-IPTABLES-HINT, in nat, filter and mangle.
Beside it: Docker's DNS rules, kind's KIND-MASQ-AGENT, Cilium's CILIUM_* feeders, and the user's own
rules, some of which mention KUBE in a comment or a chain name without being kube-proxy's.

Every line is marked: True when it is kube-proxy's (must go), False when it must stay. The expected result
of a removal is the same restore file without the True lines, loaded somewhere clean.
"""

from __future__ import annotations

import re

V4 = {"pod": "10.244.0.0/16", "dns_ip": "10.96.0.10/32", "web_ip": "10.96.12.34/32", "ep1": "10.244.1.3",
      "ep2": "10.244.2.7", "web_ep": "10.244.1.9", "docker_dns": "172.18.0.1/32", "lo": "127.0.0.0/8",
      "ep_fmt": "{}:{}"}
V6 = {"pod": "fd00:10:244::/56", "dns_ip": "fd00:10:96::a/128", "web_ip": "fd00:10:96::1234/128",
      "ep1": "fd00:10:244:1::3", "ep2": "fd00:10:244:2::7", "web_ep": "fd00:10:244:1::9",
      "docker_dns": "fc00:f853:ccd:e793::1/128", "lo": "::1/128", "ep_fmt": "[{}]:{}"}

K, KEEP = True, False


def _ruleset(a: dict, v6: bool) -> dict[str, list[tuple[str, bool]]]:
    ep = lambda ip, port: a["ep_fmt"].format(ip, port)  # noqa: E731
    dns_svc, web_svc = "KUBE-SVC-TCOU7JCQXEZGVUNU", "KUBE-SVC-LOLE4ISW44XBNF3G"
    sep1, sep2, web_sep = "KUBE-SEP-IT2ZTR26TO4XFPTO", "KUBE-SEP-N4G2XR5TDX7PQE7P", "KUBE-SEP-ZXMNUKOKXUTL2MK2"
    nat = [
        (":PREROUTING ACCEPT [0:0]", KEEP), (":INPUT ACCEPT [0:0]", KEEP), (":OUTPUT ACCEPT [0:0]", KEEP),
        (":POSTROUTING ACCEPT [0:0]", KEEP),
        (":CILIUM_OUTPUT_nat - [0:0]", KEEP), (":CILIUM_POST_nat - [0:0]", KEEP), (":CILIUM_PRE_nat - [0:0]", KEEP),
        (":DOCKER_OUTPUT - [0:0]", KEEP), (":DOCKER_POSTROUTING - [0:0]", KEEP), (":KIND-MASQ-AGENT - [0:0]", KEEP),
        (":KUBE-EXT-LOLE4ISW44XBNF3G - [0:0]", K), (":KUBE-KUBELET-CANARY - [0:0]", K),
        (":KUBE-MARK-MASQ - [0:0]", K), (":KUBE-NODEPORTS - [0:0]", K), (":KUBE-POSTROUTING - [0:0]", K),
        (":KUBE-PROXY-CANARY - [0:0]", K), (f":{sep1} - [0:0]", K), (f":{sep2} - [0:0]", K),
        (f":{web_sep} - [0:0]", K), (":KUBE-SERVICES - [0:0]", K), (f":{dns_svc} - [0:0]", K),
        (f":{web_svc} - [0:0]", K),
        ('-A PREROUTING -m comment --comment "cilium-feeder: CILIUM_PRE_nat" -j CILIUM_PRE_nat', KEEP),
        ('-A PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES', K),
        (f"-A PREROUTING -d {a['docker_dns']} -j DOCKER_OUTPUT", KEEP),
        ('-A OUTPUT -m comment --comment "cilium-feeder: CILIUM_OUTPUT_nat" -j CILIUM_OUTPUT_nat', KEEP),
        ('-A OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES', K),
        (f"-A OUTPUT -d {a['docker_dns']} -j DOCKER_OUTPUT", KEEP),
        ('-A POSTROUTING -m comment --comment "cilium-feeder: CILIUM_POST_nat" -j CILIUM_POST_nat', KEEP),
        ('-A POSTROUTING -m comment --comment "kubernetes postrouting rules" -j KUBE-POSTROUTING', K),
        (f"-A POSTROUTING -d {a['docker_dns']} -j DOCKER_POSTROUTING", KEEP),
        ('-A POSTROUTING -m addrtype ! --dst-type LOCAL -m comment --comment "kind-masq-agent: ensure nat '
         'POSTROUTING directs all non-LOCAL destination traffic to our custom KIND-MASQ-AGENT chain" '
         "-j KIND-MASQ-AGENT", KEEP),
        (f'-A POSTROUTING -s {a["pod"]} -m comment --comment "user: masquerade lab pods (not a KUBE rule)" '
         "-j MASQUERADE", KEEP),
        (f"-A DOCKER_OUTPUT -d {a['docker_dns']} -p tcp -m tcp --dport 53 -j DNAT --to-destination "
         f"{ep('127.0.0.11' if not v6 else '::1', 41025)}", KEEP),
        (f"-A DOCKER_POSTROUTING -s {a['lo']} -p tcp -m tcp --sport 41025 -j SNAT --to-source "
         f"{ep(a['docker_dns'].split('/')[0], 53)}", KEEP),
        (f'-A KIND-MASQ-AGENT -d {a["pod"]} -m comment --comment "kind-masq-agent: local traffic is not subject '
         'to MASQUERADE" -j RETURN', KEEP),
        ('-A KIND-MASQ-AGENT -m comment --comment "kind-masq-agent: outbound traffic is subject to MASQUERADE '
         '(must be last in chain)" -j MASQUERADE', KEEP),
        ('-A KUBE-EXT-LOLE4ISW44XBNF3G -m comment --comment "masquerade traffic for default/web:http external '
         'destinations" -j KUBE-MARK-MASQ', K),
        (f"-A KUBE-EXT-LOLE4ISW44XBNF3G -j {web_svc}", K),
        ("-A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000", K),
        ('-A KUBE-NODEPORTS -p tcp -m comment --comment "default/web:http" -m tcp --dport 30080 '
         "-j KUBE-EXT-LOLE4ISW44XBNF3G", K),
        ("-A KUBE-POSTROUTING -m mark ! --mark 0x4000/0x4000 -j RETURN", K),
        ("-A KUBE-POSTROUTING -j MARK --set-xmark 0x4000/0x0", K),
        ('-A KUBE-POSTROUTING -m comment --comment "kubernetes service traffic requiring SNAT" -j MASQUERADE '
         "--random-fully", K),
        (f'-A {sep1} -s {a["ep1"]}/{128 if v6 else 32} -m comment --comment "kube-system/kube-dns:dns" '
         "-j KUBE-MARK-MASQ", K),
        (f'-A {sep1} -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp -j DNAT --to-destination '
         f"{ep(a['ep1'], 53)}", K),
        (f'-A {sep2} -s {a["ep2"]}/{128 if v6 else 32} -m comment --comment "kube-system/kube-dns:dns" '
         "-j KUBE-MARK-MASQ", K),
        (f'-A {sep2} -p udp -m comment --comment "kube-system/kube-dns:dns" -m udp -j DNAT --to-destination '
         f"{ep(a['ep2'], 53)}", K),
        (f'-A {web_sep} -s {a["web_ep"]}/{128 if v6 else 32} -m comment --comment "default/web:http" '
         "-j KUBE-MARK-MASQ", K),
        (f'-A {web_sep} -p tcp -m comment --comment "default/web:http" -m tcp -j DNAT --to-destination '
         f"{ep(a['web_ep'], 8080)}", K),
        (f'-A KUBE-SERVICES -d {a["dns_ip"]} -p udp -m comment --comment "kube-system/kube-dns:dns cluster IP" '
         f"-m udp --dport 53 -j {dns_svc}", K),
        (f'-A KUBE-SERVICES -d {a["web_ip"]} -p tcp -m comment --comment "default/web:http cluster IP" '
         f"-m tcp --dport 80 -j {web_svc}", K),
        ('-A KUBE-SERVICES -m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule '
         'in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS', K),
        (f'-A {dns_svc} ! -s {a["pod"]} -d {a["dns_ip"]} -p udp -m comment --comment '
         '"kube-system/kube-dns:dns cluster IP" -m udp --dport 53 -j KUBE-MARK-MASQ', K),
        (f'-A {dns_svc} -m comment --comment "kube-system/kube-dns:dns -> {ep(a["ep1"], 53)}" -m statistic '
         f"--mode random --probability 0.50000000000 -j {sep1}", K),
        (f'-A {dns_svc} -m comment --comment "kube-system/kube-dns:dns -> {ep(a["ep2"], 53)}" -j {sep2}', K),
        (f'-A {web_svc} ! -s {a["pod"]} -d {a["web_ip"]} -p tcp -m comment --comment "default/web:http cluster '
         'IP" -m tcp --dport 80 -j KUBE-MARK-MASQ', K),
        (f'-A {web_svc} -m comment --comment "default/web:http -> {ep(a["web_ep"], 8080)}" -j {web_sep}', K),
    ]
    filter_ = [
        (":INPUT ACCEPT [0:0]", KEEP), (":FORWARD ACCEPT [0:0]", KEEP), (":OUTPUT ACCEPT [0:0]", KEEP),
        (":CILIUM_FORWARD - [0:0]", KEEP), (":CILIUM_INPUT - [0:0]", KEEP), (":CILIUM_OUTPUT - [0:0]", KEEP),
        (":KUBE-EXTERNAL-SERVICES - [0:0]", K), (":KUBE-FIREWALL - [0:0]", K), (":KUBE-FORWARD - [0:0]", K),
        (":KUBE-KUBELET-CANARY - [0:0]", K), (":KUBE-NODEPORTS - [0:0]", K), (":KUBE-PROXY-CANARY - [0:0]", K),
        (":KUBE-PROXY-FIREWALL - [0:0]", K), (":KUBE-SERVICES - [0:0]", K), (":LAB-KUBE-AUDIT - [0:0]", KEEP),
        ('-A INPUT -m comment --comment "cilium-feeder: CILIUM_INPUT" -j CILIUM_INPUT', KEEP),
        ('-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" '
         "-j KUBE-PROXY-FIREWALL", K),
        ('-A INPUT -m comment --comment "kubernetes health check service ports" -j KUBE-NODEPORTS', K),
        ('-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service '
         'portals" -j KUBE-EXTERNAL-SERVICES', K),
        ("-A INPUT -j KUBE-FIREWALL", K),
        ('-A INPUT -p tcp -m tcp --dport 22 -m comment --comment "user: ssh stays open, KUBE-FIREWALL or not" '
         "-j ACCEPT", KEEP),
        ("-A INPUT -p tcp -m tcp --dport 9100 -j LAB-KUBE-AUDIT", KEEP),
        ('-A FORWARD -m comment --comment "cilium-feeder: CILIUM_FORWARD" -j CILIUM_FORWARD', KEEP),
        ('-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" '
         "-j KUBE-PROXY-FIREWALL", K),
        ('-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD', K),
        ('-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
         "-j KUBE-SERVICES", K),
        ('-A FORWARD -m conntrack --ctstate NEW -m comment --comment "kubernetes externally-visible service '
         'portals" -j KUBE-EXTERNAL-SERVICES', K),
        ('-A FORWARD -m comment --comment "user: \\"-j KUBE-SERVICES\\" here is only words" -j ACCEPT', KEEP),
        ('-A OUTPUT -m comment --comment "cilium-feeder: CILIUM_OUTPUT" -j CILIUM_OUTPUT', KEEP),
        ('-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes load balancer firewall" '
         "-j KUBE-PROXY-FIREWALL", K),
        ('-A OUTPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" '
         "-j KUBE-SERVICES", K),
        ("-A OUTPUT -j KUBE-FIREWALL", K),
        ('-A CILIUM_FORWARD -o cilium_host -m comment --comment "cilium: any->cluster on cilium_host forward '
         'accept" -j ACCEPT', KEEP),
        ('-A CILIUM_INPUT -m mark --mark 0x200/0xf00 -m comment --comment "cilium: ACCEPT for proxy traffic" '
         "-j ACCEPT", KEEP),
        ('-A CILIUM_OUTPUT -m mark --mark 0xa00/0xfffffeff -m comment --comment "cilium: ACCEPT for proxy '
         'return traffic" -j ACCEPT', KEEP),
        ('-A KUBE-FORWARD -m conntrack --ctstate INVALID -m comment --comment "kubernetes forwarding rules" '
         "-j DROP", K),
        ('-A KUBE-FORWARD -m comment --comment "kubernetes forwarding rules" -m mark --mark 0x4000/0x4000 '
         "-j ACCEPT", K),
        ('-A KUBE-FORWARD -m comment --comment "kubernetes forwarding conntrack rule" -m conntrack --ctstate '
         "RELATED,ESTABLISHED -j ACCEPT", K),
        ('-A LAB-KUBE-AUDIT -m comment --comment "user: count node-exporter scrapes" -j RETURN', KEEP),
    ]
    if not v6:  # kubelet's localnet guard exists for IPv4 only (route_localnet)
        filter_.append(("-A KUBE-FIREWALL ! -s 127.0.0.0/8 -d 127.0.0.0/8 -m comment --comment \"block incoming "
                        "localnet connections\" -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP", K))
    mangle = [
        (":PREROUTING ACCEPT [0:0]", KEEP), (":INPUT ACCEPT [0:0]", KEEP), (":FORWARD ACCEPT [0:0]", KEEP),
        (":OUTPUT ACCEPT [0:0]", KEEP), (":POSTROUTING ACCEPT [0:0]", KEEP), (":CILIUM_PRE_mangle - [0:0]", KEEP),
        (":KUBE-IPTABLES-HINT - [0:0]", K), (":KUBE-KUBELET-CANARY - [0:0]", K), (":KUBE-PROXY-CANARY - [0:0]", K),
        ('-A PREROUTING -m comment --comment "cilium-feeder: CILIUM_PRE_mangle" -j CILIUM_PRE_mangle', KEEP),
        ('-A CILIUM_PRE_mangle -m socket --transparent -m comment --comment "cilium: any->pod redirect proxied '
         'traffic to host proxy" -j MARK --set-xmark 0x200/0xffffffff', KEEP),
    ]
    return {"nat": nat, "filter": filter_, "mangle": mangle}


def ruleset(family: str) -> dict[str, list[tuple[str, bool]]]:
    """family: "iptables" (IPv4) or "ip6tables" (IPv6)."""
    return _ruleset(V6 if family == "ip6tables" else V4, family == "ip6tables")


def restore_text(family: str, keep_only: bool = False) -> str:
    out = []
    for table, lines in ruleset(family).items():
        out.append(f"*{table}")
        out += [line for line, kube in lines if not (keep_only and kube)]
        out.append("COMMIT")
    return "\n".join(out) + "\n"


def comparable(save_output: str, counters: bool = True) -> str:
    """iptables-save output without its timestamped header and footer lines (and without the chains' packet
    counters when `counters` is False: traffic through the node moves them)."""
    lines = [line for line in save_output.splitlines() if not line.startswith(("# Generated by", "# Completed on"))]
    if not counters:
        lines = [re.sub(r"\[\d+:\d+\]$", "[0:0]", line) if line.startswith(":") else line for line in lines]
    return "\n".join(lines)


# kube-proxy in nftables mode (pkg/proxy/nftables, Kubernetes 1.31+): everything in a table of its own per
# family, as setupNFTables and syncProxyRules write it for the same two services. Chains are (name, base-chain
# head or None, rules); the counts a removal reports come from this structure, not from the code under test.
def nft_kube_proxy(family: str) -> tuple[list[tuple[str, str | None, list[str]]], list[str]]:
    """(chains, sets and maps) of `table <family> kube-proxy`; family "ip" or "ip6"."""
    a, ipx = (V6, "ip6") if family == "ip6" else (V4, "ip")
    addr = "ipv6_addr" if family == "ip6" else "ipv4_addr"
    no_localhost = "ip6 daddr != ::1" if family == "ip6" else "ip daddr != 127.0.0.0/8"
    dns_ip, web_ip = a["dns_ip"].split("/")[0], a["web_ip"].split("/")[0]
    dns, web = "service-ULMVA6XW-kube-system/kube-dns/udp/dns", "service-HVFWP5L3-default/web/tcp/http"
    web_ext = "external-HVFWP5L3-default/web/tcp/http"

    def endpoint(name: str, ip: str, port: int) -> tuple[str, str | None, list[str]]:
        return (f"endpoint-{name}__{ip.replace(':', '.')}/{port}", None,
                [f"{ipx} saddr {ip} jump mark-for-masquerade",
                 f"meta l4proto {'udp' if port == 53 else 'tcp'} dnat to {a['ep_fmt'].format(ip, port)}"])

    ep1 = endpoint("5OJB2KTY-kube-system/kube-dns/udp/dns", a["ep1"], 53)
    ep2 = endpoint("4HVIFNKA-kube-system/kube-dns/udp/dns", a["ep2"], 53)
    web_ep = endpoint("NVGCEX3K-default/web/tcp/http", a["web_ep"], 8080)
    # Priorities as numbers (dstnat is -100, srcnat 100): the nft of kind's images only knows the names for
    # some hooks.
    base = "type {} hook {} priority {}; policy accept;"
    chains = [
        ("filter-prerouting", base.format("filter", "prerouting", -110), ["ct state new jump firewall-check"]),
        ("filter-input", base.format("filter", "input", -110),
         ["ct state new jump nodeport-endpoints-check", "ct state new jump service-endpoints-check"]),
        ("filter-forward", base.format("filter", "forward", -110),
         ["ct state new jump service-endpoints-check", "ct state new jump cluster-ips-check"]),
        ("filter-output", base.format("filter", "output", -110),
         ["ct state new jump service-endpoints-check", "ct state new jump firewall-check"]),
        ("filter-output-post-dnat", base.format("filter", "output", -90),
         ["ct state new jump cluster-ips-check"]),
        ("nat-prerouting", base.format("nat", "prerouting", -100), ["jump services"]),
        ("nat-output", base.format("nat", "output", -100), ["jump services"]),
        ("nat-postrouting", base.format("nat", "postrouting", 100), ["jump masquerading"]),
        ("nodeport-endpoints-check", None,
         [f"{no_localhost} meta l4proto . th dport vmap @no-endpoint-nodeports"]),
        ("service-endpoints-check", None, [f"{ipx} daddr . meta l4proto . th dport vmap @no-endpoint-services"]),
        ("firewall-check", None, [f"{ipx} daddr . meta l4proto . th dport vmap @firewall-ips"]),
        ("services", None, [f"{ipx} daddr . meta l4proto . th dport vmap @service-ips",
                            f"fib daddr type local {no_localhost} meta l4proto . th dport vmap @service-nodeports"]),
        ("cluster-ips-check", None, [f'{ipx} daddr @cluster-ips reject comment "Reject traffic to invalid ports '
                                     'of ClusterIPs"']),
        ("masquerading", None, ["meta mark & 0x00004000 == 0x00000000 return",
                                "meta mark set meta mark ^ 0x00004000", "masquerade fully-random"]),
        ("mark-for-masquerade", None, ["meta mark set meta mark | 0x00004000"]),
        ("reject-chain", None, ["reject"]),
        (dns, None, [f"{ipx} daddr {dns_ip} udp dport 53 {ipx} saddr != {a['pod']} jump mark-for-masquerade",
                     f"numgen random mod 2 vmap {{ 0 : goto {ep1[0]} , 1 : goto {ep2[0]} }}"]),
        (web, None, [f"{ipx} daddr {web_ip} tcp dport 80 {ipx} saddr != {a['pod']} jump mark-for-masquerade",
                     f"goto {web_ep[0]}"]),
        (web_ext, None, ["jump mark-for-masquerade", f"goto {web}"]),
        ep1, ep2, web_ep,
    ]
    sets = [
        f'set cluster-ips {{ type {addr}; comment "Active ClusterIPs"; elements = {{ {dns_ip}, {web_ip} }}; }}',
        f'map no-endpoint-services {{ type {addr} . inet_proto . inet_service : verdict; comment "vmap to drop or '
        'reject packets to services with no endpoints"; }',
        'map no-endpoint-nodeports { type inet_proto . inet_service : verdict; comment "vmap to drop or reject '
        'packets to service nodeports with no endpoints"; }',
        f'map firewall-ips {{ type {addr} . inet_proto . inet_service : verdict; comment "destinations that are '
        'subject to LoadBalancerSourceRanges"; }',
        f'map service-ips {{ type {addr} . inet_proto . inet_service : verdict; comment "ClusterIP, ExternalIP and '
        f'LoadBalancer IP traffic"; elements = {{ {dns_ip} . udp . 53 : goto {dns}, {web_ip} . tcp . 80 : '
        f'goto {web} }}; }}',
        f'map service-nodeports {{ type inet_proto . inet_service : verdict; comment "NodePort traffic"; '
        f'elements = {{ tcp . 30080 : goto {web_ext} }}; }}',
    ]
    return chains, sets


# Tables beside kube-proxy's that are not kube-proxy's and must stay as they are: the user's firewall, a table
# of the same name in another family (kube-proxy only writes ip and ip6), and one whose name only starts alike.
NFT_KEPT = """table inet user-firewall {
	chain input {
		type filter hook input priority filter; policy accept;
		tcp dport 22 counter accept comment "user: ssh"
	}
}
table inet kube-proxy {
	chain audit {
		counter comment "user: not kube-proxy's (kube-proxy writes ip and ip6 tables only)"
	}
}
table ip kube-proxy-debug {
	chain trace {
		meta nftrace set 1
	}
}
"""


def nft_text(families=("ip", "ip6"), keep: bool = True) -> str:
    """An `nft -f` file: kube-proxy's table of each family (chains declared before any rule jumps to them),
    and NFT_KEPT when keep."""
    out = []
    for family in families:
        chains, sets = nft_kube_proxy(family)
        out.append(f'table {family} kube-proxy {{\n\tcomment "rules for kube-proxy"')
        out += [f"\t{s}" for s in sets]
        out += [f"\tchain {name} {{" + (f"\n\t\t{head}" if head else "") + "\n\t}" for name, head, _ in chains]
        out.append("}")
        out += [f"add rule {family} kube-proxy {name} {rule}" for name, _, rules in chains for rule in rules]
    if keep:
        out.append(NFT_KEPT)
    return "\n".join(out) + "\n"


def nft_counts(families=("ip", "ip6")) -> tuple[int, int]:
    """(chains, rules) of kube-proxy's tables for these families."""
    chains = [c for family in families for c in nft_kube_proxy(family)[0]]
    return len(chains), sum(len(rules) for _, _, rules in chains)
