"""kube-proxy's nftables mode: its rules live in two tables of its own, `ip kube-proxy` and `ip6 kube-proxy`.

kube-proxy (pkg/proxy/nftables) keeps everything it writes, chains, rules, sets and maps, inside those
tables, and its own clean-up (`kube-proxy --cleanup`, CleanupLeftovers) deletes them whole. So does this;
every other table (iptables-nft's, the user's, a `kube-proxy` table of another family) is left alone.
Reading them needs the node's `nft`: kind ships it since v0.23.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

TABLE = "kube-proxy"
FAMILIES = ("ip", "ip6")
NO_NFT = 127  # the read script's exit status when the node has no nft

# One nft process when there is no kube-proxy table (the list of tables); the tables themselves are only
# listed when they are there. The newlines around the names make the match exact ("kube-proxy-old" is not it).
READ = f"""command -v nft >/dev/null 2>&1 || exit {NO_NFT}
kl_tables=$(nft list tables) || exit
for kl_family in {' '.join(FAMILIES)}; do
  case "
$kl_tables
" in *"
table $kl_family {TABLE}
"*) nft -j list table $kl_family {TABLE} || exit ;; esac
done"""


class ListingError(ValueError):
    """nft printed something that is not the JSON it was asked for (nothing is touched then)."""


@dataclass(frozen=True)
class KubeTable:
    family: str
    chains: int
    rules: int
    sets: int  # sets and maps (service dispatch, cluster IPs, ...)

    @property
    def name(self) -> str:
        return f"{self.family} {TABLE}"


def parse(text: str) -> list[KubeTable]:
    """READ's output: one JSON document per kube-proxy table (`nft -j list table ...`)."""
    tables = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            items = json.loads(line)["nftables"]
            kinds = [next(iter(item)) for item in items]
            family = next(item["table"]["family"] for item in items if "table" in item)
        except (ValueError, KeyError, TypeError, StopIteration) as exc:
            raise ListingError(f"nft listing, line {number}: not a table in JSON ({exc}): {line[:120]!r}") from None
        tables.append(KubeTable(family, kinds.count("chain"), kinds.count("rule"),
                                kinds.count("set") + kinds.count("map")))
    return tables


def removal_script(tables: list[KubeTable]) -> str:
    """Input for `nft -f -`: one transaction, so both families go or neither does."""
    return "".join(f"delete table {t.family} {TABLE}\n" for t in tables)
