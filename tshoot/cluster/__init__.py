"""The cluster model: the Kubernetes API (kube), the Cilium agent and its version (cilium), Cilium's
objects (objects: endpoints, identities, nodes, who is behind an address) and enrichment (enrich:
what the numbers in a map entry are, in the cluster's words)."""
