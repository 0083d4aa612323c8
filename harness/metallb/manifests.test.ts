import { describe, expect, it } from "vitest";
import { loadConfig } from "../core/config.ts";
import { connectionLost, forHostProcesses, l2Pool, loadManifest } from "./manifests.ts";

describe("the pinned MetalLB manifest", () => {
  it("is the release upstream/metallb builds", async () => {
    const { pinnedVersions } = await import("../cluster/local/binaries.ts");
    const repoRoot = loadConfig({}, {}).repoRoot;
    const images =
      JSON.stringify(await loadManifest(repoRoot)).match(/quay\.io\/metallb\/\w+:v[\d.]+/g) ?? [];
    expect(images.length).toBeGreaterThan(0);
    for (const image of images)
      expect(image.endsWith(`:${(await pinnedVersions(repoRoot)).metallb}`)).toBe(true);
  });

  it("keeps CRDs and RBAC for host processes, drops workloads and the webhook, strips CRD conversion", async () => {
    const objects = forHostProcesses(await loadManifest(loadConfig({}, {}).repoRoot));
    const kinds = new Set(objects.map((o) => o.kind));
    expect(kinds).toEqual(
      new Set([
        "Namespace",
        "CustomResourceDefinition",
        "ServiceAccount",
        "Role",
        "ClusterRole",
        "RoleBinding",
        "ClusterRoleBinding",
        "ConfigMap",
      ]),
    );
    const crds = objects.filter((o) => o.kind === "CustomResourceDefinition");
    expect(crds.map((c) => c.metadata?.name)).toContain("ipaddresspools.metallb.io");
    expect(crds.map((c) => c.metadata?.name)).toContain("servicel2statuses.metallb.io");
    for (const crd of crds)
      expect((crd as { spec?: { conversion?: unknown } }).spec?.conversion).toBeUndefined();
  });

  it("builds a pool and its L2Advertisement", () => {
    const [pool, adv] = l2Pool("10.250.0.239-10.250.0.254");
    expect(pool).toMatchObject({ kind: "IPAddressPool", spec: { addresses: ["10.250.0.239-10.250.0.254"] } });
    expect(adv).toMatchObject({ kind: "L2Advertisement", spec: { ipAddressPools: ["tph-pool"] } });
  });
});

describe("connectionLost", () => {
  it("is a fetch that failed on its socket, not an API error", () => {
    const lost = Object.assign(new TypeError("fetch failed"), {
      cause: Object.assign(new Error("other side closed"), { code: "UND_ERR_SOCKET" }),
    });
    expect(connectionLost(lost)).toBe(true);
    expect(connectionLost(Object.assign(new Error("Unprocessable Entity"), { code: 422 }))).toBe(false);
    expect(connectionLost(new TypeError("fetch failed"))).toBe(false);
  });
});
