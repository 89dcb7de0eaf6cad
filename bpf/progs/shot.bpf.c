// SPDX-License-Identifier: GPL-2.0
/* A tc program that drops every packet (TC_ACT_SHOT), as a policy-denying datapath program does:
 * tests/test_trace.py attaches it to a device and checks that `tshoot trace` reports the drop with the
 * kernel's reason (TC_INGRESS / TC_EGRESS) and this program's name and id on that device. */
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

SEC("tc")
int kindlab_shot(struct __sk_buff *skb)
{
	return TC_ACT_SHOT;
}

char _license[] SEC("license") = "GPL";
