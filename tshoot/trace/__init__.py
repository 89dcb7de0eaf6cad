"""`tshoot trace`: packets followed hop by hop across every node and pod of a kind lab, which share the
host's kernel. One module per concern, in the style of bcc's tools/:

  bpf/trace.bpf.c  the kernel side: BTF tracepoints netif_receive_skb, net_dev_start_xmit, kfree_skb
  build.py         compiling it at first use (clang, CO-RE), cached
  filter.py        pcap-style expressions, and what the kernel may pre-filter
  events.py        records -> events: where, what happened, the packet, why it was dropped
  names.py         network namespace inodes -> the host, kind nodes, pods' namespaces, `ip netns` names
  tracer.py        loading, attaching, draining the ring buffer, the summary
"""
