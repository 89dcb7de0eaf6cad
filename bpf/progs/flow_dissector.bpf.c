// SPDX-License-Identifier: GPL-2.0
/* A flow dissector, the network-namespace-wide hook `bpftool net show` lists last; it lets the kernel's
 * own dissector do the work. In a file of its own: libbpf must recognise every section of an object
 * loaded without a forced program type. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("flow_dissector")
int flow_dissect(struct __sk_buff *skb)
{
	return BPF_FLOW_DISSECTOR_CONTINUE;
}

char _license[] SEC("license") = "GPL";
