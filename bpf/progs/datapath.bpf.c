// SPDX-License-Identifier: GPL-2.0
/* Stand-ins for Cilium's datapath programs, for tests that attach BPF where Cilium does.
 *
 * Same program names (cil_*) and the 1.9-era section names the guide's `bpftool net show` prints
 * ("bpf_lxc.o:[from-container]"). They pass every packet: the node datapath of tests/netnode.py needs
 * real attachments with real names, ids and tags, not Cilium's logic. The simulated cluster
 * (tests/simdatapath.py) forwards with the project's model of that logic instead: progs/cilium/.
 */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define PASS_TC(section, name) \
	SEC(section) int name(struct __sk_buff *skb) { return TC_ACT_OK; }

PASS_TC("from-container", cil_from_container)
PASS_TC("to-container", cil_to_container)
PASS_TC("from-host", cil_from_host)
PASS_TC("to-host", cil_to_host)
PASS_TC("from-netdev", cil_from_netdev)
PASS_TC("to-netdev", cil_to_netdev)
PASS_TC("from-overlay", cil_from_overlay)
PASS_TC("to-overlay", cil_to_overlay)

SEC("xdp")
int cil_xdp_entry(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char _license[] SEC("license") = "GPL";
