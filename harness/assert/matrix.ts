import type { Outcome } from "../../manifests/policy-matrix.ts";
import {
  blackholed,
  type LedgerEntry,
  refusedOrRateLimited,
  seenSourceIp,
  sourceIpPreserved,
  type Verdict,
} from "./verdicts.ts";

/**
 * Verdicts for the policy matrix: what one cell's requests showed, named as the matrix names outcomes,
 * and whether that is what the cell expects.
 */

/** The addresses a cell's outcome is judged by. */
export interface CellAddresses {
  /** The source's own address (a host-network source's is its node's IP). */
  own: string;
  /** Node E's addresses (its IP and its pod-CIDR gateway): what masquerading on E may show. */
  E: readonly string[];
  N: readonly string[];
  /** The addresses of the node announcing the LoadBalancer IP, where the cell needs them. */
  announcer?: readonly string[];
}

/** Every request succeeded and the backend saw one of `allowed` (the addresses of the node that NATed). */
export function sourceIpFrom(entries: LedgerEntry[], allowed: readonly string[], node: string): Verdict {
  const broken = entries.filter((e) => {
    const seen = seenSourceIp(e);
    return seen === undefined || !allowed.includes(seen);
  });
  const name = `SourceIpFrom(${node})`;
  if (entries.length === 0)
    return { name, passed: false, summary: `${name}: no requests to judge`, evidence: [] };
  return {
    name,
    passed: broken.length === 0,
    summary:
      broken.length === 0
        ? `${name}: all ${entries.length} requests were NATed to ${node} (${allowed.join(" or ")})`
        : `${name}: ${broken.length} of ${entries.length} requests were not NATed to ${node} (${allowed.join(" or ")}); first saw ${describeSeen(broken[0] as LedgerEntry)}`,
    evidence: broken.slice(0, 20),
  };
}

function describeSeen(e: LedgerEntry): string {
  return e.outcome === "ok" ? `${seenSourceIp(e)}` : e.outcome;
}

/**
 * The verdict a cell expecting `expected` holds its requests to. `icmpSuppressed`: ICMP errors the
 * nodes rate-limited while the cell ran, where the provider can count them (a refusal then may show as
 * a timeout; see refusedOrRateLimited).
 */
export function cellVerdict(
  entries: LedgerEntry[],
  expected: Outcome,
  addrs: CellAddresses,
  icmpSuppressed = 0,
): Verdict {
  switch (expected) {
    case "own":
      return sourceIpPreserved(entries, addrs.own);
    case "snat:E":
      return sourceIpFrom(entries, addrs.E, "E");
    case "snat:N":
      return sourceIpFrom(entries, addrs.N, "N");
    case "snat:ann":
      if (!addrs.announcer) throw new Error("a snat:ann cell needs the announcer's addresses");
      return sourceIpFrom(entries, addrs.announcer, "the announcing node");
    case "dropped":
      return blackholed(entries, "timeout");
    case "refused":
      return refusedOrRateLimited(entries, icmpSuppressed);
    case "nowhere":
      return blackholed(entries, "nowhere");
    case "n/a":
      throw new Error("an n/a cell has nothing to judge");
  }
}

/**
 * What a cell's requests showed, in the matrix's words: `own`, `snat:E`, `snat:N`, `dropped` (timeout),
 * `refused`, `nowhere` (unreachable), another outcome as the probe names it, or `a|b` when requests
 * disagreed. For the grid in the artifacts.
 */
export function seenOutcome(entries: LedgerEntry[], addrs: CellAddresses): string {
  const kinds = new Set(
    entries.map((e) => {
      if (e.outcome === "timeout") return "dropped";
      if (e.outcome === "unreachable") return "nowhere";
      if (e.outcome !== "ok") return e.outcome;
      const seen = seenSourceIp(e) ?? "";
      if (seen === addrs.own) return "own";
      if (addrs.E.includes(seen)) return "snat:E";
      if (addrs.N.includes(seen)) return "snat:N";
      return `ip:${seen}`;
    }),
  );
  return kinds.size === 0 ? "nothing" : [...kinds].sort().join("|");
}
