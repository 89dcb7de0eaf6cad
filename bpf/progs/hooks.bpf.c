// SPDX-License-Identifier: GPL-2.0
/* For the net/prog show tests: a program that uses maps, as every Cilium program does, so `prog show`
 * has map ids to name. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} cilium_metrics SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u32);
} cilium_lxc SEC(".maps");

SEC("from-netdev")
int cil_from_netdev(struct __sk_buff *skb)
{
	__u32 key = 0, ifindex = skb->ifindex;
	__u64 *packets = bpf_map_lookup_elem(&cilium_metrics, &key);

	if (packets)
		__sync_fetch_and_add(packets, 1);
	if (bpf_map_lookup_elem(&cilium_lxc, &ifindex))
		return TC_ACT_OK;
	return TC_ACT_OK;
}

char _license[] SEC("license") = "GPL";
