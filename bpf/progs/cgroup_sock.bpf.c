// SPDX-License-Identifier: GPL-2.0
/* Stand-ins for Cilium's socket-LB cgroup programs (bpf_sock.c): the names Cilium gives them, so
 * tests can attach them to a test cgroup and check that unhook/cgroup show find exactly these.
 * They allow every operation (return 1).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define ALLOW(section, name, ctx_type) \
	SEC(section) int name(struct ctx_type *ctx) { return 1; }

ALLOW("cgroup/connect4", cil_sock4_connect, bpf_sock_addr)
ALLOW("cgroup/sendmsg4", cil_sock4_sendmsg, bpf_sock_addr)
ALLOW("cgroup/recvmsg4", cil_sock4_recvmsg, bpf_sock_addr)
ALLOW("cgroup/getpeername4", cil_sock4_getpeername, bpf_sock_addr)
ALLOW("cgroup/post_bind4", cil_sock4_post_bind, bpf_sock)
ALLOW("cgroup/connect6", cil_sock6_connect, bpf_sock_addr)
ALLOW("cgroup/sendmsg6", cil_sock6_sendmsg, bpf_sock_addr)
ALLOW("cgroup/recvmsg6", cil_sock6_recvmsg, bpf_sock_addr)
ALLOW("cgroup/getpeername6", cil_sock6_getpeername, bpf_sock_addr)
ALLOW("cgroup/post_bind6", cil_sock6_post_bind, bpf_sock)

char _license[] SEC("license") = "GPL";
