// SPDX-License-Identifier: GPL-2.0
/* tshoot trace: every IPv4 packet the kernel receives, transmits or frees with a drop reason, on every
 * network namespace of the machine (kind nodes and their pods share this kernel), as one ring buffer of
 * events.
 *
 * CO-RE, without vmlinux.h: the few kernel structs read are declared below with only the members used and
 * __attribute__((preserve_access_index)), so libbpf relocates each member to its offset in the running
 * kernel's BTF (/sys/kernel/btf/vmlinux) at load time. Attached to BTF tracepoints (tp_btf): no kprobes,
 * no fentry, no tracefs (shared/reference/tracing.md §1).
 *
 *   net:netif_receive_skb(skb)            a packet entering a device's stack      -> TRACE_RECEIVE
 *   net:net_dev_start_xmit(skb, dev)      a packet handed to a device's driver    -> TRACE_TRANSMIT
 *                                         (with skb->redirected: sent there by a BPF program's redirect)
 *   skb:kfree_skb(skb, location, reason)  a packet freed as dropped               -> TRACE_DROP
 *
 * A VXLAN packet (UDP to 8472, Cilium's port, or 4789) is read through: outer addresses, VNI, and the inner
 * packet's addresses and ports (tracing.md §4: the VNI is bytes 4-6 of the VXLAN header; the L4 header is
 * found from the IHL, never from skb->transport_header). A packet handed to a VXLAN device in external
 * (collect_md) mode, as Cilium's cilium_vxlan, is not encapsulated yet: the tunnel key a BPF program set
 * (bpf_skb_set_tunnel_key) rides in its metadata dst, and is read from there (tunnel_key()).
 *
 * Filter (the config map, set by user space before packets flow): up to MAX_ADDRS IPv4 addresses of which
 * one must appear (inner or outer, source or destination), an L4 protocol and a port; zero = anything.
 * User space applies the full expression; this only keeps unrelated traffic out of the ring buffer.
 */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define ETH_P_IP 0x0800
#define IPPROTO_ICMP 1
#define IPPROTO_TCP 6
#define IPPROTO_UDP 17
#define VXLAN_PORT_CILIUM 8472
#define VXLAN_PORT_IANA 4789
#define MAX_ADDRS 8
#define IFNAMSIZ 16
#define KIND_SIZE 8
#define RING_SIZE (8 << 20)

enum { TRACE_RECEIVE = 1, TRACE_TRANSMIT = 2, TRACE_DROP = 3 };

/* --- the kernel's structs, as far as read (CO-RE relocates every member) ------------------------- */
struct ns_common { unsigned int inum; } __attribute__((preserve_access_index));
struct net { struct ns_common ns; } __attribute__((preserve_access_index));
typedef struct { struct net *net; } possible_net_t;
struct rtnl_link_ops { const char *kind; } __attribute__((preserve_access_index));
struct net_device {
	char name[IFNAMSIZ];
	int ifindex;
	possible_net_t nd_net;
	const struct rtnl_link_ops *rtnl_link_ops;
} __attribute__((preserve_access_index));
/* include/net/dst.h, include/net/dst_metadata.h, include/net/ip_tunnels.h */
#define DST_METADATA 0x0080
#define IP_TUNNEL_INFO_TX 0x01
#define SKB_DST_NOREF 1UL
struct dst_entry { unsigned short flags; } __attribute__((preserve_access_index));
struct ip_tunnel_key {
	__be64 tun_id;
	union { struct { __be32 src, dst; } ipv4; } u;
} __attribute__((preserve_access_index));
struct ip_tunnel_info { struct ip_tunnel_key key; __u8 mode; } __attribute__((preserve_access_index));
enum metadata_type { METADATA_IP_TUNNEL = 0 };
struct metadata_dst {
	struct dst_entry dst;
	enum metadata_type type;
	union { struct ip_tunnel_info tun_info; } u;
} __attribute__((preserve_access_index));
struct sk_buff {
	unsigned long _skb_refdst;
	struct net_device *dev;
	unsigned int len;
	__be16 protocol;
	__u16 network_header;
	unsigned char *head;
	/* include/linux/skbuff.h, CONFIG_NET_REDIRECT: set by skb_do_redirect() -> skb_set_redirected()
	 * (net/core/filter.c, a tc program's bpf_redirect) and by generic XDP's redirect; cleared on the next
	 * receive (__netif_receive_skb_core -> skb_reset_redirect()), not by a tunnel's encapsulation: a packet
	 * redirected to cilium_vxlan still has it on the node's eth0 (measured on 6.18, tests/test_trace_sim.py).
	 * Read only where the kernel has it. */
	__u8 redirected:1;
} __attribute__((preserve_access_index));

/* --- what user space reads ----------------------------------------------------------------------- */
struct packet {		/* one IPv4 packet's addresses, protocol and ports (ICMP: type, code) */
	__be32 saddr, daddr;
	__be16 sport, dport;
	__u8 proto;
	__u8 pad[3];
};

struct event {
	__u64 ts;		/* bpf_ktime_get_ns() */
	__u64 skb;		/* the skb's address: the same packet on every hop (veth does not reallocate) */
	__u64 location;		/* kfree_skb: where it was freed (a kernel text address) */
	__u32 netns;		/* the device's network namespace inode */
	__u32 ifindex;
	__u32 reason;		/* kfree_skb: enum skb_drop_reason (names from BTF in user space) */
	__u32 len;
	__u32 vni;		/* VXLAN: the VNI (Cilium: the source security identity) */
	__u8 kind;		/* TRACE_* */
	__u8 tunnel;		/* 1: outer is a VXLAN packet, inner what it carries; 2: the packet carries a
				 * tunnel key for its VXLAN device (vni, tunnel_remote) */
	__u16 pad;
	char dev[IFNAMSIZ];
	char dev_kind[KIND_SIZE];	/* the device's rtnl link kind: veth, vxlan, bridge… ("" for physical) */
	struct packet outer;	/* the packet as on the wire of this device */
	struct packet inner;	/* a VXLAN packet's payload (tunnel = 1) */
	__be32 tunnel_remote;	/* tunnel = 2: the node the device will send it to */
	__u8 redirected;	/* transmit: skb->redirected, a BPF redirect since the skb was last received */
	__u8 pad2[3];
};

/* Puts struct event in the object's BTF, where tests/test_trace_filter.py compares it with the reader's layout. */
const struct event *unused_event __attribute__((unused));

struct config {
	__be32 addrs[MAX_ADDRS];
	__u32 n_addrs;
	__u8 proto;
	__u8 pad;
	__be16 port;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, RING_SIZE);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct config);
} config SEC(".maps");

/* [0]: events the ring buffer had no room for; [1]: events emitted */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

static __always_inline void count(__u32 slot)
{
	__u64 *n = bpf_map_lookup_elem(&counters, &slot);

	if (n)
		*n += 1;
}

/* An IPv4 header at p (kernel memory) -> pk; returns the L4 offset from p, or 0 when it is not IPv4. */
static __always_inline int read_ipv4(const unsigned char *p, struct packet *pk)
{
	__u8 ip[20];
	__u16 l4[2];
	int ihl;

	if (bpf_probe_read_kernel(ip, sizeof(ip), p))
		return 0;
	if ((ip[0] >> 4) != 4)
		return 0;
	ihl = (ip[0] & 0x0f) * 4;
	if (ihl < 20)
		return 0;
	pk->proto = ip[9];
	__builtin_memcpy(&pk->saddr, &ip[12], 4);
	__builtin_memcpy(&pk->daddr, &ip[16], 4);
	if (pk->proto == IPPROTO_TCP || pk->proto == IPPROTO_UDP || pk->proto == IPPROTO_ICMP) {
		if (bpf_probe_read_kernel(l4, sizeof(l4), p + ihl))
			return 0;
		pk->sport = l4[0];	/* ICMP: type and code, in their byte order */
		pk->dport = l4[1];
	}
	return ihl;
}

static __always_inline int involves(const struct config *cfg, __be32 a)
{
	for (int i = 0; i < MAX_ADDRS; i++) {
		if (i >= cfg->n_addrs)
			break;
		if (cfg->addrs[i] == a)
			return 1;
	}
	return 0;
}

static __always_inline int wanted(const struct event *e)
{
	__u32 zero = 0;
	const struct config *cfg = bpf_map_lookup_elem(&config, &zero);
	const struct packet *pk = e->tunnel == 1 ? &e->inner : &e->outer;

	if (!cfg)
		return 1;
	if (cfg->n_addrs && !involves(cfg, pk->saddr) && !involves(cfg, pk->daddr) &&
	    !involves(cfg, e->outer.saddr) && !involves(cfg, e->outer.daddr))
		return 0;
	if (cfg->proto && cfg->proto != pk->proto)
		return 0;
	if (cfg->port && pk->proto != IPPROTO_ICMP && cfg->port != pk->sport && cfg->port != pk->dport)
		return 0;
	return 1;
}

/* The tunnel key of a packet handed to a collect_md VXLAN device: skb_tunnel_info()
 * (include/net/dst_metadata.h) — a metadata dst of type METADATA_IP_TUNNEL, for transmission — and the VNI
 * as vxlan_xmit_one() takes it (tunnel_id_to_key32(): the low 32 bits of the big-endian tun_id). */
static __always_inline void tunnel_key(struct sk_buff *skb, struct event *e)
{
	struct metadata_dst *md = (void *)(skb->_skb_refdst & ~SKB_DST_NOREF);
	__be64 id;

	if (!md || !(BPF_CORE_READ(md, dst.flags) & DST_METADATA) || BPF_CORE_READ(md, type) != METADATA_IP_TUNNEL ||
	    !(BPF_CORE_READ(md, u.tun_info.mode) & IP_TUNNEL_INFO_TX))
		return;
	id = BPF_CORE_READ(md, u.tun_info.key.tun_id);
	e->tunnel = 2;
	e->vni = (__u32)bpf_be64_to_cpu(id);
	e->tunnel_remote = BPF_CORE_READ(md, u.tun_info.key.u.ipv4.dst);
}

static __always_inline int emit(struct sk_buff *skb, struct net_device *dev, __u8 kind, __u64 location,
				__u32 reason)
{
	struct event e = {};
	unsigned char *head;
	__u16 nh;
	int l4;

	if (skb->protocol != bpf_htons(ETH_P_IP))
		return 0;
	head = skb->head;
	nh = skb->network_header;
	if (nh == 0xffff)
		return 0;
	l4 = read_ipv4(head + nh, &e.outer);
	if (!l4)
		return 0;
	if (e.outer.proto == IPPROTO_UDP &&
	    (e.outer.dport == bpf_htons(VXLAN_PORT_CILIUM) || e.outer.dport == bpf_htons(VXLAN_PORT_IANA))) {
		__u8 vx[8];
		__be16 ethertype;
		const unsigned char *vxlan = head + nh + l4 + 8;

		if (!bpf_probe_read_kernel(vx, sizeof(vx), vxlan) && (vx[0] & 0x08) &&
		    !bpf_probe_read_kernel(&ethertype, 2, vxlan + 8 + 12) && ethertype == bpf_htons(ETH_P_IP) &&
		    read_ipv4(vxlan + 8 + 14, &e.inner)) {
			e.tunnel = 1;
			e.vni = (__u32)vx[4] << 16 | (__u32)vx[5] << 8 | vx[6];
		}
	}
	if (kind == TRACE_TRANSMIT && !e.tunnel && dev && dev->rtnl_link_ops) {
		char vx[KIND_SIZE] = {};

		bpf_probe_read_kernel_str(vx, sizeof(vx), dev->rtnl_link_ops->kind);
		if (vx[0] == 'v' && vx[1] == 'x' && vx[2] == 'l' && vx[3] == 'a' && vx[4] == 'n' && !vx[5])
			tunnel_key(skb, &e);
	}
	if (kind == TRACE_TRANSMIT && bpf_core_field_exists(skb->redirected))
		e.redirected = BPF_CORE_READ_BITFIELD_PROBED(skb, redirected);
	if (!wanted(&e))
		return 0;
	if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) > RING_SIZE - sizeof(e)) {
		count(0);	/* full: lost, without reading the device's names for nothing */
		return 0;
	}
	e.ts = bpf_ktime_get_ns();
	e.skb = (__u64)skb;
	e.kind = kind;
	e.location = location;
	e.reason = reason;
	e.len = skb->len;
	if (dev) {
		const struct rtnl_link_ops *ops = dev->rtnl_link_ops;

		e.ifindex = dev->ifindex;
		e.netns = dev->nd_net.net->ns.inum;
		bpf_probe_read_kernel_str(e.dev, sizeof(e.dev), dev->name);
		if (ops)
			bpf_probe_read_kernel_str(e.dev_kind, sizeof(e.dev_kind), ops->kind);
	}
	/* The consumer drains the ring every few milliseconds: no wakeup per event (tracing.md §5 measured
	 * that a wakeup per event halves the throughput). */
	if (bpf_ringbuf_output(&events, &e, sizeof(e), BPF_RB_NO_WAKEUP)) {
		count(0);
		return 0;
	}
	count(1);
	return 0;
}

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(trace_receive, struct sk_buff *skb)
{
	return emit(skb, skb->dev, TRACE_RECEIVE, 0, 0);
}

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(trace_transmit, struct sk_buff *skb, struct net_device *dev)
{
	return emit(skb, dev, TRACE_TRANSMIT, 0, 0);
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(trace_drop, struct sk_buff *skb, void *location, int reason)
{
	return emit(skb, skb->dev, TRACE_DROP, (__u64)location, (__u32)reason);
}

char _license[] SEC("license") = "GPL";
