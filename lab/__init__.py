"""lab: bring up and tear down the kind + Cilium networking lab the guide uses."""
