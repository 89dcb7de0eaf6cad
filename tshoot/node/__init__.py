"""Reaching a node: where map bytes and BPF objects come from, for `tshoot` and `lab` alike.

* agent: the one way to use a node's Cilium agent (find its pod, exec, `bpftool -j`, its version), and
  PodBackend, the maps' view of it;
* local: this machine's pinned maps through libbpf (LocalBackend); bpfsys: its programs, links and
  attachments; libbpf: the one ctypes binding both use;
* backend: the questions every map backend answers; choice: the one `--backend` rule;
* fanout: asking many nodes at once, bounded, each node's failure a NodeFailure among the answers."""
