"""tshoot: inspect Cilium's BPF datapath: build map keys, decode map bytes, read maps on any node."""
