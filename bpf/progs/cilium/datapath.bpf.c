// SPDX-License-Identifier: GPL-2.0
/* The simulated cluster's datapath: the project's model of the decisions Cilium's tc programs take for
 * the lab's configuration (VXLAN tunnel, kube-proxy replacement, IPv4 only, no host firewall, no
 * encryption, no L7 proxy), written for kindlab and driven by Cilium's own maps in the layout of one
 * Cilium version. It is not Cilium's code: every decision names the Cilium function it mirrors, so a
 * reader can compare.
 *
 * Built by tests/simdatapath.py datapath_objects(): -DCILIUM_VERSION=MMmmpp picks the struct layouts
 * (kindlab/layouts.h); the pinned names and sizes of the maps the simulated agent creates come as
 * -D<MAP>_NAME/-D<MAP>_MAX from tshoot's map registry, so libbpf reuses the very maps the sim filled
 * (LIBBPF_PIN_BY_NAME under the node's tc/globals). -DENDPOINT_OBJECT builds bpf_lxc.o (the endpoint's
 * programs and its policy map); without it, the node's bpf_host.o and bpf_overlay.o.
 *
 * Per node and per endpoint the simulated loader rewrites the compiled object the way Cilium's loader
 * specialises its template objects (pkg/datapath/loader/template.go, elfMapSubstitutions and
 * elfVariableSubstitutions, v1.9): the node constants below hold placeholder values it replaces, and
 * POLICY_MAP_NAME is the template name cilium_policy..._65535 it renames to the endpoint's policy map.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

#include "kindlab/layouts.h"

#if !defined(IPCACHE_NAME) || !defined(LXC_NAME) || !defined(POLICY_NAME) || !defined(CT4_NAME)
#error "compile through tests/simdatapath.py datapath_objects(): map names come from tshoot's registry"
#endif

/* --- node configuration (node_config.h in Cilium), replaced per node by the loader -------------- */
volatile const __u32 ENCAP_IFINDEX = 0x6b6c0e01;	/* cilium_vxlan's ifindex */
volatile const __u32 IPV4_MASK = 0x6b6c0e02;		/* the node's pod CIDR mask, network order */

/* --- Cilium's constants (bpf/lib/common.h, drop_reasons.h from 1.18) ----------------------------- */
/* Drop reasons are positive here: Cilium defines them negative and stores the absolute value in
 * cilium_metrics (drop.h); the functions below return them negated, as Cilium's do. */
#define WORLD_ID		2
#define HOST_ID			1
#define ENDPOINT_KEY_IPV4	1
#define ENDPOINT_F_HOST		1
#define TUPLE_F_OUT		0
#define TUPLE_F_IN		1
#define TUPLE_F_SERVICE		4
#define CB_SRC_LABEL		0	/* skb->cb slots a policy tail call reads (common.h enum) */
#define CB_IFINDEX		1
#define METRIC_INGRESS		1
#define METRIC_EGRESS		2
#define REASON_FORWARDED	0
#define REASON_PLAINTEXT	3

#define DROP_INVALID_SIP	132
#define DROP_POLICY		133
#define DROP_INVALID		134
#define DROP_UNKNOWN_L3		139
#define DROP_MISSED_TAIL_CALL	140
#define DROP_WRITE_ERROR	141
#define DROP_NO_TUNNEL_KEY	147
#define DROP_UNROUTABLE		151
#define DROP_CSUM_L3		153
#define DROP_CSUM_L4		154
#define DROP_NO_SERVICE		158
#define DROP_POLICY_DENY	181
#define DROP_EP_NOT_READY	203

/* An empty cilium_call_policy slot: ipv4_local_delivery() (bpf/lib/l3.h) returns DROP_MISSED_TAIL_CALL
 * up to 1.15.0-pre; tail_call_policy() returns DROP_EP_NOT_READY by 1.15.7 and from 1.16.0. */
#if SINCE(15, 7)
#define DROP_POLICY_SLOT_EMPTY	DROP_EP_NOT_READY
#else
#define DROP_POLICY_SLOT_EMPTY	DROP_MISSED_TAIL_CALL
#endif

/* The source file id in the metrics key from 1.16 (bpf/lib/source_info.h __id_for_file). */
#define FILE_BPF_HOST		1
#define FILE_BPF_LXC		2
#define FILE_BPF_OVERLAY	3

/* --- maps --------------------------------------------------------------------------------------- */
#define PINNED_MAP(name, map_type, key_type, value_type, entries, flags) \
	KINDLAB_MAP(name, map_type, key_type, value_type, entries, flags, __uint(pinning, LIBBPF_PIN_BY_NAME);)

PINNED_MAP(IPCACHE_NAME, BPF_MAP_TYPE_LPM_TRIE, struct ipcache_key, struct remote_endpoint_info, IPCACHE_MAX,
	   BPF_F_NO_PREALLOC);
PINNED_MAP(LXC_NAME, BPF_MAP_TYPE_HASH, struct endpoint_key, struct endpoint_info, LXC_MAX, 0);
PINNED_MAP(CT4_NAME, BPF_MAP_TYPE_LRU_HASH, struct ipv4_ct_tuple, struct ct_entry, CT4_MAX, 0);
PINNED_MAP(CT_ANY4_NAME, BPF_MAP_TYPE_LRU_HASH, struct ipv4_ct_tuple, struct ct_entry, CT_ANY4_MAX, 0);
PINNED_MAP(LB4_SERVICES_NAME, BPF_MAP_TYPE_HASH, struct lb4_key, struct lb4_service, LB4_SERVICES_MAX, 0);
PINNED_MAP(LB4_BACKENDS_NAME, BPF_MAP_TYPE_HASH, BACKEND_KEY, struct lb4_backend, LB4_BACKENDS_MAX, 0);
PINNED_MAP(LB4_REVNAT_NAME, BPF_MAP_TYPE_HASH, __u16, struct lb4_reverse_nat, LB4_REVNAT_MAX, 0);
#ifdef ENDPOINT_OBJECT	/* the endpoint's own policy map: only bpf_lxc.o declares it */
#if SINCE(14, 0)
PINNED_MAP(POLICY_NAME, POLICY_MAP_TYPE, struct policy_key, struct policy_entry, POLICY_MAX, BPF_F_NO_PREALLOC);
#else
PINNED_MAP(POLICY_NAME, POLICY_MAP_TYPE, struct policy_key, struct policy_entry, POLICY_MAX, 0);
#endif
#endif
#if !SINCE(18, 0)
PINNED_MAP(TUNNEL_NAME, BPF_MAP_TYPE_HASH, TUNNEL_KEY, TUNNEL_VALUE, TUNNEL_MAX, 0);
#endif

/* cilium_metrics: per-CPU {reason, dir[, line, file]} -> {count, bytes} (kindlab/metrics_*.h; bpf/lib/common.h
 * ≤1.18, bpf/lib/metrics.h 1.19; pkg/maps/metricsmap MaxEntries 1024). */
PINNED_MAP(cilium_metrics, BPF_MAP_TYPE_PERCPU_HASH, struct metrics_key, struct metrics_value, 1024, 0);

/* cilium_call_policy: every endpoint's policy program at its endpoint id (bpf/lib/maps.h POLICY_CALL_MAP,
 * sized like the endpoint map). */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, LXC_MAX);
	__type(key, __u32);
	__type(value, __u32);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} cilium_call_policy SEC(".maps");

/* --- version differences in the values read ------------------------------------------------------ */
#if SINCE(14, 0)
#define INFO_IDENTITY(info)	((info)->sec_identity)
#else
#define INFO_IDENTITY(info)	((info)->sec_label)
#endif
#if SINCE(18, 0)	/* the tunnel endpoint became a v4/v6 union with a presence flag (1.18) */
#define INFO_TUNNEL_EP(info)	((info)->flag_has_tunnel_ep ? (info)->tunnel_endpoint.ip4 : 0)
#else
#define INFO_TUNNEL_EP(info)	((info)->tunnel_endpoint)
#endif
#if SINCE(11, 0)	/* ct_entry: a service entry's backend id is named from 1.11, it sat in rx_bytes before */
#define CT_BACKEND_ID(entry)	((entry)->backend_id)
#else
#define CT_BACKEND_ID(entry)	((entry)->rx_bytes)
#endif
#if SINCE(17, 0)	/* the L4 protocol is part of the service key from 1.17 */
#define LB_KEY_PROTO(proto)	(proto)
#else
#define LB_KEY_PROTO(proto)	0
#endif

/* --- metrics: bpf/lib/metrics.h update_metrics(), trace.h update_trace_metrics() ----------------- */
static __always_inline void count(struct __sk_buff *skb, __u8 reason, __u8 dir, __u8 file, __u16 line)
{
	struct metrics_key key = { .reason = reason, .dir = dir };
	struct metrics_value *value, fresh = { .count = 1, .bytes = skb->len };

#if SINCE(16, 0)
	key.line = line;
	key.file = file;
#endif
	value = bpf_map_lookup_elem(&cilium_metrics, &key);
	if (value) {
		value->count += 1;
		value->bytes += skb->len;
	} else {
		bpf_map_update_elem(&cilium_metrics, &key, &fresh, BPF_ANY);
	}
}

/* send_drop_notify*() (bpf/lib/drop.h): count the drop under its reason and direction, end the packet. */
#define DROP(skb, reason, dir, file) ({ count(skb, reason, dir, file, __LINE__); TC_ACT_SHOT; })
#define FORWARD(skb, reason, dir, file) count(skb, reason, dir, file, __LINE__)

/* --- packet access -------------------------------------------------------------------------------- */
struct pkt {
	struct iphdr ip4;
	__u32 l4_off;
	__be16 sport;
	__be16 dport;
};

#define IP_CSUM_OFF	(ETH_HLEN + offsetof(struct iphdr, check))
#define IP_DADDR_OFF	(ETH_HLEN + offsetof(struct iphdr, daddr))
#define IP_SADDR_OFF	(ETH_HLEN + offsetof(struct iphdr, saddr))
#define IP_TTL_OFF	(ETH_HLEN + offsetof(struct iphdr, ttl))

static __always_inline int load_ipv4(struct __sk_buff *skb, struct pkt *p)
{
	if (bpf_skb_load_bytes(skb, ETH_HLEN, &p->ip4, sizeof(p->ip4)) < 0 || p->ip4.ihl < 5)
		return -DROP_INVALID;
	p->l4_off = ETH_HLEN + p->ip4.ihl * 4;
	p->sport = p->dport = 0;
	switch (p->ip4.protocol) {
	case IPPROTO_TCP:
	case IPPROTO_UDP:
		if (bpf_skb_load_bytes(skb, p->l4_off, &p->sport, 4) < 0)
			return -DROP_INVALID;
		break;
	case IPPROTO_ICMP: {
		/* conntrack.h ct_lookup4(): an echo's identifier stands in for the ports */
		struct { __u8 type, code; __u16 csum; __be16 id; } icmp;	/* linux/icmp.h pulls libc */

		if (bpf_skb_load_bytes(skb, p->l4_off, &icmp, sizeof(icmp)) < 0)
			return -DROP_INVALID;
		if (icmp.type == 8)		/* ICMP_ECHO */
			p->dport = icmp.id;
		else if (icmp.type == 0)	/* ICMP_ECHOREPLY */
			p->sport = icmp.id;
		break;
	}
	}
	return 0;
}

static __always_inline __u32 l4_csum_off(const struct pkt *p)
{
	return p->l4_off + (p->ip4.protocol == IPPROTO_TCP ? 16 : 6);
}

/* lb.h lb4_xlate() / __lb4_rev_nat(): rewrite one address (dst or src) and its port, fixing the IPv4
 * and L4 checksums (UDP's zero checksum stays zero: BPF_F_MARK_MANGLED_0). */
static __always_inline int rewrite(struct __sk_buff *skb, struct pkt *p, bool dst, __be32 addr, __be16 port)
{
	__be32 old_addr = dst ? p->ip4.daddr : p->ip4.saddr;
	__be16 old_port = dst ? p->dport : p->sport;
	bool ports = p->ip4.protocol == IPPROTO_TCP || p->ip4.protocol == IPPROTO_UDP;
	__u64 mangled = p->ip4.protocol == IPPROTO_UDP ? BPF_F_MARK_MANGLED_0 : 0;

	if (bpf_skb_store_bytes(skb, dst ? IP_DADDR_OFF : IP_SADDR_OFF, &addr, 4, 0) < 0)
		return -DROP_WRITE_ERROR;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old_addr, addr, 4) < 0)
		return -DROP_CSUM_L3;
	if (ports) {
		if (bpf_l4_csum_replace(skb, l4_csum_off(p), old_addr, addr, BPF_F_PSEUDO_HDR | mangled | 4) < 0)
			return -DROP_CSUM_L4;
		if (port && port != old_port) {
			if (bpf_skb_store_bytes(skb, p->l4_off + (dst ? 2 : 0), &port, 2, 0) < 0)
				return -DROP_WRITE_ERROR;
			if (bpf_l4_csum_replace(skb, l4_csum_off(p), old_port, port, mangled | 2) < 0)
				return -DROP_CSUM_L4;
		}
	}
	if (dst) {
		p->ip4.daddr = addr;
		if (ports && port)
			p->dport = port;
	} else {
		p->ip4.saddr = addr;
		if (ports && port)
			p->sport = port;
	}
	return 0;
}

/* --- lookups ---------------------------------------------------------------------------------------- */
/* bpf/lib/eps.h lookup_ip4_endpoint(): cilium_lxc by address. */
static __always_inline struct endpoint_info *lookup_endpoint(__be32 addr)
{
	struct endpoint_key key = {};

	key.ip4 = addr;
	key.family = ENDPOINT_KEY_IPV4;
	return bpf_map_lookup_elem(&LXC_NAME, &key);
}

/* bpf/lib/eps.h ipcache_lookup4() / lookup_ip4_remote_endpoint(): longest prefix of a /32 key; the
 * static prefix covers the bytes between the LPM header and the address (IPCACHE_STATIC_PREFIX). */
static __always_inline struct remote_endpoint_info *lookup_ipcache(__be32 addr)
{
	struct ipcache_key key = {};

	key.lpm_key.prefixlen = 8 * (sizeof(key) - sizeof(struct bpf_lpm_trie_key) - sizeof(union v6addr)) + 32;
	key.family = ENDPOINT_KEY_IPV4;
	key.ip4 = addr;
	return bpf_map_lookup_elem(&IPCACHE_NAME, &key);
}

static __always_inline __u32 identity_of(struct remote_endpoint_info *info)
{
	return info ? INFO_IDENTITY(info) : WORLD_ID;
}

#ifdef ENDPOINT_OBJECT
/* bpf/lib/policy.h __policy_can_access(): the keys tshoot's PolicyMap.datapath_keys() lists, in that
 * order. Hash maps (up to 1.13) hold exact keys, asked {id, proto, port}, {any, proto, port}, {id, any},
 * {any, any}; LPM tries (1.14 on) are asked with the full prefix of {id, proto, port} then
 * {any, proto, port}, and the longest stored prefix answers. A deny entry drops with DROP_POLICY_DENY,
 * no entry with DROP_POLICY. */
static __always_inline struct policy_entry *policy_get(__u32 identity, __u8 egress, __u8 proto, __be16 dport)
{
	struct policy_key key = {};

	key.sec_label = identity;
	key.egress = egress;
	key.protocol = proto;
	key.dport = dport;
#if SINCE(14, 0)
	key.lpm_key.prefixlen = 64;	/* POLICY_FULL_PREFIX */
#endif
	return bpf_map_lookup_elem(&POLICY_NAME, &key);
}

static __always_inline int policy_can_access(__u32 identity, __u8 egress, __u8 proto, __be16 dport)
{
	struct policy_entry *entry = policy_get(identity, egress, proto, dport);

	if (!entry)
		entry = policy_get(0, egress, proto, dport);
#if !SINCE(14, 0)
	if (!entry)
		entry = policy_get(identity, egress, 0, 0);
	if (!entry)
		entry = policy_get(0, egress, 0, 0);
#endif
	if (!entry)
		return -DROP_POLICY;
	if (entry->deny)
		return -DROP_POLICY_DENY;
	return 0;
}

#endif /* ENDPOINT_OBJECT */

/* --- conntrack: bpf/lib/conntrack.h ct_lookup4() / ct_create4() --------------------------------------- */
enum { CT_NEW, CT_ESTABLISHED, CT_REPLY };
enum ct_dir { CT_EGRESS, CT_INGRESS };

struct ct_state {
	__be16 rev_nat_index;	/* network order, as the entries and cilium_lb4_reverse_nat's key hold it */
};

static __always_inline void *ct_map(__u8 proto)
{
	/* conntrack.h get_ct_map4(): TCP in the TCP table, everything else in the "any" table */
	if (proto == IPPROTO_TCP)
		return &CT4_NAME;
	return &CT_ANY4_NAME;
}

/* The tuple as ct_lookup4() first builds it: addresses as in the packet, ports swapped, the flag of the
 * opposite direction; found, the packet is a reply. Reversed, it is the flow's own entry. */
static __always_inline void ct_tuple(const struct pkt *p, enum ct_dir dir, struct ipv4_ct_tuple *t)
{
	t->daddr = p->ip4.daddr;
	t->saddr = p->ip4.saddr;
	t->dport = p->sport;
	t->sport = p->dport;
	t->nexthdr = p->ip4.protocol;
	t->flags = dir == CT_EGRESS ? TUPLE_F_IN : TUPLE_F_OUT;
}

static __always_inline void ct_reverse(struct ipv4_ct_tuple *t)
{
	__be32 addr = t->daddr;
	__be16 port = t->dport;

	t->daddr = t->saddr;
	t->saddr = addr;
	t->dport = t->sport;
	t->sport = port;
	t->flags ^= TUPLE_F_IN;
}

static __always_inline int ct_lookup(const struct pkt *p, enum ct_dir dir, struct ipv4_ct_tuple *t,
				     struct ct_state *state)
{
	struct ct_entry *entry;

	ct_tuple(p, dir, t);
	entry = bpf_map_lookup_elem(ct_map(p->ip4.protocol), t);
	if (entry) {
		state->rev_nat_index = entry->rev_nat_index;
		return CT_REPLY;
	}
	ct_reverse(t);
	entry = bpf_map_lookup_elem(ct_map(p->ip4.protocol), t);
	if (entry) {
		state->rev_nat_index = entry->rev_nat_index;
		return CT_ESTABLISHED;
	}
	return CT_NEW;
}

/* ct_create4(): the flow's own entry (the reversed tuple), with the Service's reverse-NAT index so its
 * replies are translated back. */
static __always_inline int ct_create(const struct pkt *p, struct ipv4_ct_tuple *t, __be16 rev_nat_index,
				     __u32 src_identity)
{
	struct ct_entry entry = {};

	entry.rev_nat_index = rev_nat_index;
	entry.src_sec_id = src_identity;
	if (bpf_map_update_elem(ct_map(p->ip4.protocol), t, &entry, BPF_ANY) < 0)
		return -DROP_INVALID;
	return 0;
}

/* lb.h lb4_rev_nat(): a reply of a load-balanced flow leaves with the Service's address and port. */
static __always_inline int rev_nat(struct __sk_buff *skb, struct pkt *p, __be16 index)
{
	struct lb4_reverse_nat *nat;

	if (!index)
		return 0;
	nat = bpf_map_lookup_elem(&LB4_REVNAT_NAME, &index);
	if (!nat)
		return 0;
	return rewrite(skb, p, false, nat->address, nat->port);
}

/* --- load balancing: bpf/lib/lb.h lb4_lookup_service(), lb4_local() ------------------------------------ */
/* Returns 1 when the packet was translated to a backend (rev_nat_index set), 0 when it is not for a
 * Service, or a negative drop reason. */
static __always_inline int lb4_xlate(struct __sk_buff *skb, struct pkt *p, __be16 *rev_nat_index)
{
	struct lb4_key key = {};
	struct lb4_service *svc, *slot;
	struct lb4_backend *backend;
	struct ipv4_ct_tuple t = {};
	struct ct_entry *entry, fresh = {};
	BACKEND_KEY backend_id;

	if (p->ip4.protocol != IPPROTO_TCP && p->ip4.protocol != IPPROTO_UDP)
		return 0;	/* lb.h extract_l4_port(): no Service lookup for ICMP */
	key.address = p->ip4.daddr;
	key.dport = p->dport;
	key.proto = LB_KEY_PROTO(p->ip4.protocol);
	svc = bpf_map_lookup_elem(&LB4_SERVICES_NAME, &key);
	if (!svc)
		return 0;
#if SINCE(16, 0)
	/* lb4_local() (by 1.16): a frontend without backends drops new flows with DROP_NO_SERVICE. */
	if (svc->count == 0)
		return -DROP_NO_SERVICE;
#else
	/* lb4_lookup_service() (1.9): a frontend without backends is no Service; the packet goes on
	 * to the ClusterIP as addressed. */
	if (svc->count == 0)
		return 0;
#endif
	*rev_nat_index = svc->rev_nat_index;

	/* The CT_SERVICE entry remembers the backend a flow was given (lb4_local(), ct_lookup4 with
	 * TUPLE_F_SERVICE). */
	t.daddr = p->ip4.daddr;
	t.saddr = p->ip4.saddr;
	t.dport = p->dport;
	t.sport = p->sport;
	t.nexthdr = p->ip4.protocol;
	t.flags = TUPLE_F_SERVICE;
	entry = bpf_map_lookup_elem(ct_map(p->ip4.protocol), &t);
	backend = NULL;
	if (entry) {
		backend_id = CT_BACKEND_ID(entry);
		backend = bpf_map_lookup_elem(&LB4_BACKENDS_NAME, &backend_id);
	}
	if (!backend) {
		/* lb4_select_backend_id() (random selection): slots 1..count follow the frontend */
		key.backend_slot = (bpf_get_prandom_u32() % svc->count) + 1;
		slot = bpf_map_lookup_elem(&LB4_SERVICES_NAME, &key);
		if (!slot)
			return -DROP_NO_SERVICE;
		backend_id = slot->backend_id;
		backend = bpf_map_lookup_elem(&LB4_BACKENDS_NAME, &backend_id);
		if (!backend)
			return -DROP_NO_SERVICE;
		CT_BACKEND_ID(&fresh) = backend_id;
		fresh.rev_nat_index = svc->rev_nat_index;
		bpf_map_update_elem(ct_map(p->ip4.protocol), &t, &fresh, BPF_ANY);
	}
	/* lb4_xlate(): DNAT to the backend */
	if (rewrite(skb, p, true, backend->address, backend->port) < 0)
		return -DROP_WRITE_ERROR;
	return 1;
}

/* --- delivery ------------------------------------------------------------------------------------------ */
/* l3.h ipv4_l3(): the router's hop (TTL) and the endpoint's MACs, from its cilium_lxc entry. */
static __always_inline int ipv4_l3(struct __sk_buff *skb, struct pkt *p, struct endpoint_info *ep)
{
	__u8 ttl = p->ip4.ttl;
	__u16 old = bpf_htons((__u16)ttl << 8), new;

	if (ttl <= 1)
		return -DROP_INVALID;
	new = bpf_htons((__u16)(ttl - 1) << 8);
	ttl--;
	if (bpf_skb_store_bytes(skb, IP_TTL_OFF, &ttl, 1, 0) < 0)
		return -DROP_WRITE_ERROR;
	if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, old, new, 2) < 0)
		return -DROP_CSUM_L3;
	if (bpf_skb_store_bytes(skb, 0, &ep->mac, ETH_ALEN, 0) < 0 ||
	    bpf_skb_store_bytes(skb, ETH_ALEN, &ep->node_mac, ETH_ALEN, 0) < 0)
		return -DROP_WRITE_ERROR;
	return 0;
}

/* l3.h ipv4_local_delivery() (local_delivery.h from 1.18): MACs and TTL, then the destination
 * endpoint's policy program through its cilium_call_policy slot (tail_call_policy()). Returns only when
 * the slot is empty. */
static __always_inline int local_delivery(struct __sk_buff *skb, struct pkt *p, struct endpoint_info *ep,
					  __u32 src_identity)
{
	int ret = ipv4_l3(skb, p, ep);

	if (ret < 0)
		return ret;
	skb->cb[CB_SRC_LABEL] = src_identity;
	skb->cb[CB_IFINDEX] = ep->ifindex;
	bpf_tail_call(skb, &cilium_call_policy, ep->lxc_id);
	return -DROP_POLICY_SLOT_EMPTY;
}

/* encap.h __encap_with_nodeid() + redirect to ENCAP_IFINDEX: the tunnel key carries the source identity
 * as VNI, the outer destination is the node. */
static __always_inline int encap_and_redirect(struct __sk_buff *skb, __be32 tunnel_endpoint, __u32 src_identity)
{
	struct bpf_tunnel_key key = {};

	key.tunnel_id = src_identity;
	key.remote_ipv4 = bpf_ntohl(tunnel_endpoint);
	key.tunnel_ttl = 64;	/* IPDEFTTL */
	if (bpf_skb_set_tunnel_key(skb, &key, sizeof(key), BPF_F_ZERO_CSUM_TX) < 0)
		return -DROP_WRITE_ERROR;
	return bpf_redirect(ENCAP_IFINDEX, 0);
}

/* The tunnel endpoint of a destination: the ipcache's, or before 1.18 cilium_tunnel_map by the
 * destination's pod CIDR (encap.h encap_and_redirect_lxc() / encap_and_redirect_netdev(), key
 * daddr & IPV4_MASK). 0: no tunnel. */
static __always_inline __be32 tunnel_endpoint_of(struct remote_endpoint_info *info, __be32 daddr)
{
	__be32 endpoint = info ? INFO_TUNNEL_EP(info) : 0;
#if !SINCE(18, 0)
	if (!endpoint) {
		TUNNEL_KEY key = {};
		TUNNEL_VALUE *value;

		key.ip4 = daddr & IPV4_MASK;
		key.family = ENDPOINT_KEY_IPV4;
		value = bpf_map_lookup_elem(&TUNNEL_NAME, &key);
		if (value)
			endpoint = value->ip4;
	}
#endif
	return endpoint;
}

#ifdef ENDPOINT_OBJECT
/* --- bpf_lxc.o ------------------------------------------------------------------------------------------ */
/* from-container: bpf_lxc.c handle_xgress() -> tail_handle_ipv4() -> handle_ipv4_from_lxc() (1.9;
 * the same order in 1.19's handle_ipv4_from_lxc()). */
static __always_inline int ipv4_from_lxc(struct __sk_buff *skb, __u32 *dst_identity)
{
	struct endpoint_info *src, *ep;
	struct remote_endpoint_info *info;
	struct ipv4_ct_tuple t = {};
	struct ct_state state = {};
	__be16 svc_rev_nat = 0;
	__u32 src_identity;
	__be32 tunnel;
	struct pkt p;
	int ret, ct;

	ret = load_ipv4(skb, &p);
	if (ret < 0)
		return ret;
	/* is_valid_lxc_src_ipv4(): the source address must be the endpoint's own. Cilium compiles it
	 * in (LXC_IPV4); this model reads it from the endpoint's cilium_lxc entry. */
	src = lookup_endpoint(p.ip4.saddr);
	if (!src || src->ifindex != skb->ingress_ifindex)
		return -DROP_INVALID_SIP;
#if SINCE(17, 0)
	src_identity = src->sec_id;
#else
	/* SECLABEL is compiled into Cilium's object; the ipcache holds the same identity. */
	src_identity = identity_of(lookup_ipcache(p.ip4.saddr));
#endif

	/* Service translation before anything looks at the destination: bpf_lxc's per-packet path
	 * (ENABLE_PER_PACKET_LB; __per_packet_lb_svc_xlate_4() in 1.19). With kube-proxy replacement Cilium
	 * translates a ClusterIP earlier, at connect() in bpf_sock.c; the simulated pods share the test's
	 * cgroup, so the same lookups are made here, per packet, with the same maps and the same result. */
	ret = lb4_xlate(skb, &p, &svc_rev_nat);
	if (ret < 0)
		return ret;

	ct = ct_lookup(&p, CT_EGRESS, &t, &state);
	if (ct == CT_REPLY) {
		ret = rev_nat(skb, &p, state.rev_nat_index);
		if (ret < 0)
			return ret;
	}

	info = lookup_ipcache(p.ip4.daddr);
	*dst_identity = identity_of(info);

	/* policy_can_egress4(): replies skip the endpoint's egress policy */
	if (ct != CT_REPLY) {
		ret = policy_can_access(*dst_identity, 1, p.ip4.protocol, p.dport);
		if (ret < 0)
			return ret;
	}
	if (ct == CT_NEW) {
		ret = ct_create(&p, &t, svc_rev_nat, src_identity);
		if (ret < 0)
			return ret;
	}

	/* A local endpoint: deliver it (the host's own addresses go to the stack). */
	ep = lookup_endpoint(p.ip4.daddr);
	if (ep) {
		if (ep->flags & ENDPOINT_F_HOST)
			goto pass_to_stack;
		return local_delivery(skb, &p, ep, src_identity);
	}

	tunnel = tunnel_endpoint_of(info, p.ip4.daddr);
	if (tunnel) {
		FORWARD(skb, REASON_FORWARDED, METRIC_EGRESS, FILE_BPF_LXC);	/* TRACE_TO_OVERLAY */
		return encap_and_redirect(skb, tunnel, src_identity);
	}

pass_to_stack:
	FORWARD(skb, REASON_FORWARDED, METRIC_EGRESS, FILE_BPF_LXC);	/* TRACE_TO_STACK */
	return TC_ACT_OK;
}

SEC("from-container")
int cil_from_container(struct __sk_buff *skb)
{
	__u32 dst_identity = 0;
	int ret;

	switch (skb->protocol) {
	case bpf_htons(ETH_P_ARP):
		return TC_ACT_OK;	/* the pod's gateway ARP entry is static here; others go to the stack */
	case bpf_htons(ETH_P_IP):
		ret = ipv4_from_lxc(skb, &dst_identity);
		if (ret < 0)
			return DROP(skb, -ret, METRIC_EGRESS, FILE_BPF_LXC);
		return ret;
	default:
		/* IPv6 is disabled in the lab: handle_xgress() drops what is not IPv4 or ARP */
		return DROP(skb, DROP_UNKNOWN_L3, METRIC_EGRESS, FILE_BPF_LXC);
	}
}

/* The endpoint's policy program in cilium_call_policy[lxc_id]: bpf_lxc.c handle_policy() ≤1.17,
 * cil_lxc_policy() 1.18+, -> tail_ipv4_policy() -> ipv4_policy(): conntrack, reverse NAT of replies,
 * the ingress policy for the source identity, then redirect to the endpoint's device. */
static __always_inline int ipv4_policy(struct __sk_buff *skb, __u32 src_identity)
{
	struct ipv4_ct_tuple t = {};
	struct ct_state state = {};
	struct pkt p;
	int ret, ct;

	ret = load_ipv4(skb, &p);
	if (ret < 0)
		return ret;
	ct = ct_lookup(&p, CT_INGRESS, &t, &state);
	if (ct == CT_REPLY)
		return rev_nat(skb, &p, state.rev_nat_index);
	ret = policy_can_access(src_identity, 0, p.ip4.protocol, p.dport);
	if (ret < 0)
		return ret;
	if (ct == CT_NEW)
		return ct_create(&p, &t, 0, src_identity);
	return 0;
}

#if SINCE(18, 0)
#define POLICY_PROG cil_lxc_policy
#else
#define POLICY_PROG handle_policy
#endif

SEC("tc")
int POLICY_PROG(struct __sk_buff *skb)
{
	__u32 src_identity = skb->cb[CB_SRC_LABEL], ifindex = skb->cb[CB_IFINDEX];
	int ret;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return DROP(skb, DROP_UNKNOWN_L3, METRIC_INGRESS, FILE_BPF_LXC);
	ret = ipv4_policy(skb, src_identity);
	if (ret < 0)
		return DROP(skb, -ret, METRIC_INGRESS, FILE_BPF_LXC);
	FORWARD(skb, REASON_FORWARDED, METRIC_INGRESS, FILE_BPF_LXC);	/* TRACE_TO_LXC */
	return bpf_redirect(ifindex, 0);
}

#else /* the node's objects: bpf_overlay.o and bpf_host.o */
/* --- bpf_overlay.o -------------------------------------------------------------------------------------- */
/* from-overlay: bpf_overlay.c from_overlay() -> handle_ipv4(): the source identity is the tunnel key's
 * VNI, the destination a local endpoint (delivered through its policy program) or the host. */
static __always_inline int ipv4_from_overlay(struct __sk_buff *skb)
{
	struct bpf_tunnel_key key = {};
	struct endpoint_info *ep;
	struct pkt p;
	int ret;

	if (bpf_skb_get_tunnel_key(skb, &key, sizeof(key), 0) < 0)
		return -DROP_NO_TUNNEL_KEY;
	ret = load_ipv4(skb, &p);
	if (ret < 0)
		return ret;
	ep = lookup_endpoint(p.ip4.daddr);
	if (ep && (ep->flags & ENDPOINT_F_HOST)) {
		/* handle_ipv4() "to_host" (v1.9): Cilium gives the frame the host's MAC and redirects it to
		 * cilium_host. The inner frame still carries the sending pod's gateway MAC, which the stack
		 * would take for another host's and drop: here it is marked for this host and stays on
		 * cilium_vxlan (a node -> remote pod reply, addressed to the node's router IP). */
		bpf_skb_change_type(skb, 0);	/* PACKET_HOST */
		return TC_ACT_OK;
	}
	if (!ep)
		return TC_ACT_OK;	/* to the stack */
	return local_delivery(skb, &p, ep, key.tunnel_id);
}

SEC("from-overlay")
int cil_from_overlay(struct __sk_buff *skb)
{
	int ret;

	/* trace.h: a packet from the overlay is counted as it arrives (TRACE_FROM_OVERLAY) */
	FORWARD(skb, REASON_PLAINTEXT, METRIC_INGRESS, FILE_BPF_OVERLAY);
	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ret = ipv4_from_overlay(skb);
	if (ret < 0)
		return DROP(skb, -ret, METRIC_INGRESS, FILE_BPF_OVERLAY);
	return ret;
}

/* to-overlay: without BPF NodePort/masquerade work on cilium_vxlan's egress there is nothing to decide. */
SEC("to-overlay")
int cil_to_overlay(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

/* --- bpf_host.o ----------------------------------------------------------------------------------------- */
/* from-host (cilium_host egress): bpf_host.c handle_ipv4(from_host): a local endpoint is delivered, a
 * remote one encapsulated; an address the ipcache knows only as the world is unroutable here, or it
 * would loop through cilium_host. */
static __always_inline int ipv4_from_host(struct __sk_buff *skb)
{
	struct remote_endpoint_info *info;
	struct endpoint_info *ep;
	__be32 tunnel;
	struct pkt p;
	int ret;

	ret = load_ipv4(skb, &p);
	if (ret < 0)
		return ret;
	ep = lookup_endpoint(p.ip4.daddr);
	if (ep) {
		if (ep->flags & ENDPOINT_F_HOST)
			return TC_ACT_OK;
		return local_delivery(skb, &p, ep, HOST_ID);
	}
	info = lookup_ipcache(p.ip4.daddr);
	tunnel = tunnel_endpoint_of(info, p.ip4.daddr);
	if (tunnel)
		return encap_and_redirect(skb, tunnel, HOST_ID);
	if (!info || INFO_IDENTITY(info) == WORLD_ID)
		return -DROP_UNROUTABLE;
	return TC_ACT_OK;
}

SEC("from-host")
int cil_from_host(struct __sk_buff *skb)
{
	int ret;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return TC_ACT_OK;
	ret = ipv4_from_host(skb);
	if (ret < 0)	/* tail_handle_ipv4_cont(): reported as METRIC_INGRESS */
		return DROP(skb, -ret, METRIC_INGRESS, FILE_BPF_HOST);
	return ret;
}

/* to-host (cilium_host/cilium_net ingress): host firewall and proxy marks only; neither is configured. */
SEC("to-host")
int cil_to_host(struct __sk_buff *skb)
{
	return TC_ACT_OK;
}

/* from-netdev / to-netdev (eth0): without the host firewall, BPF NodePort or BPF masquerading, bpf_host
 * only traces what crosses the node's uplink (TRACE_FROM_NETWORK / TRACE_TO_NETWORK, trace.h). */
SEC("from-netdev")
int cil_from_netdev(struct __sk_buff *skb)
{
	FORWARD(skb, REASON_PLAINTEXT, METRIC_INGRESS, FILE_BPF_HOST);
	return TC_ACT_OK;
}

SEC("to-netdev")
int cil_to_netdev(struct __sk_buff *skb)
{
	FORWARD(skb, REASON_FORWARDED, METRIC_EGRESS, FILE_BPF_HOST);
	return TC_ACT_OK;
}

#endif /* ENDPOINT_OBJECT */

char _license[] SEC("license") = "GPL";
