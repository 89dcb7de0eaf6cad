// SPDX-License-Identifier: GPL-2.0
/* A program that is not Cilium's, attached beside Cilium's in tests: whatever cleans up Cilium's
 * hooks must leave it attached. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("cgroup/connect4")
int other_connect4(struct bpf_sock_addr *ctx)
{
	return 1;
}

SEC("tc")
int other_tc(struct __sk_buff *skb)
{
	return 0; /* TC_ACT_OK */
}

char _license[] SEC("license") = "GPL";
