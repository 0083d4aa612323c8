import type { NodeSpec } from "../harness/core/config.ts";

/**
 * The cluster the trafficDistribution suite runs on (and `npm run bench` measures): three zones of two
 * nodes each and one node without a zone label — a1 a2 | b1 b2 | c1 c2 | n0.
 */
export const ZONED_ROLES = ["a1", "a2", "b1", "b2", "c1", "c2", "n0"] as const;
export type ZonedRole = (typeof ZONED_ROLES)[number];

export const ROLE_ZONES: Record<ZonedRole, string | undefined> = {
  a1: "zone-a",
  a2: "zone-a",
  b1: "zone-b",
  b2: "zone-b",
  c1: "zone-c",
  c2: "zone-c",
  n0: undefined,
};

export const ZONED_NODES: NodeSpec[] = ZONED_ROLES.map((r) => {
  const zone = ROLE_ZONES[r];
  return zone ? { zone } : {};
});
