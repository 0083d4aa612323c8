import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { AgentConfig } from "../../harness/cluster/local/agent/config.ts";
import { POD_NETWORK } from "../../harness/cluster/local/agent/sandbox.ts";
import { parseCidr, parseIp } from "../../harness/core/cidr.ts";
import { waitFor } from "../../harness/core/wait.ts";
import { outcomeOf, runProbe, waitOutcome } from "../../harness/traffic/run-probe.ts";
import { useCluster } from "../support/cluster.ts";
import { e2eConfig } from "../support/env.ts";
import { waitPodsReady } from "../support/workloads.ts";

/**
 * The local provider's pods are attached by the real CNI reference plugins, as containerd does for a
 * kubelet: an address from host-local in the node's podCIDR, recorded per node and released by DEL when
 * the pod goes; portmap chained after ptp, so a hostPort answers on the node's address.
 */
const HOST_PORT = 18_080; // outside the NodePort range: nothing but portmap answers there

describe("pods through the CNI plugins (local provider)", () => {
  const f = useCluster({ needs: ["externalClient"], clusterName: "cni" });

  /** The agent's CNI folder on `node` (as the provider wrote it into the agent's configuration). */
  async function cniDir(node: string): Promise<string> {
    const file = join(e2eConfig().stateDir, f.cluster.name, "nodes", node, "agent.json");
    return (JSON.parse(await readFile(file, "utf8")) as AgentConfig).cni.dir;
  }
  const exists = (path: string) =>
    readFile(path, "utf8").then(
      (text) => text,
      () => undefined,
    );

  it("ADD gives the pod an address of its node's podCIDR from host-local; DEL releases it when the pod goes", async () => {
    const [node] = await f.cluster.nodes();
    if (!node) return expect.fail("no node");
    await f.k8s.core.createNamespacedPod({
      namespace: f.ns,
      body: {
        metadata: { name: "web", labels: { app: "web" } },
        spec: {
          nodeName: node.name,
          containers: [
            {
              name: "web",
              image: "registry.k8s.io/e2e-test-images/agnhost:2.53",
              args: ["netexec", "--http-port=8080"],
              ports: [{ containerPort: 8080, hostPort: HOST_PORT }],
            },
          ],
        },
      },
    });
    const [pod] = await waitPodsReady(f.k8s, f.ns, "web", 1);
    const ip = pod?.status?.podIP ?? "";
    const uid = pod?.metadata?.uid ?? "";
    const podCIDR = (await f.k8s.core.readNode({ name: node.name })).spec?.podCIDR ?? "";
    const cidr = parseCidr(podCIDR);
    expect(parseIp(ip) - cidr.network).toBeGreaterThan(1); // .1 is the gateway on the node's side

    const dir = await cniDir(node.name);
    const conflist = JSON.parse((await exists(join(dir, "net.d", "10-tph.conflist"))) ?? "{}");
    expect(conflist.plugins.map((p: { type: string }) => p.type)).toEqual(["ptp", "portmap"]);
    // host-local's record of the address names the pod's sandbox (its uid) and interface.
    expect(await exists(join(dir, "networks", POD_NETWORK, ip))).toMatch(new RegExp(`^${uid}\\s+eth0`));
    const cached = JSON.parse((await exists(join(dir, "results", `${POD_NETWORK}-${uid}-eth0`))) ?? "{}");
    expect(cached.result.ips[0].address).toBe(`${ip}/${cidr.prefix}`);

    // hostPort: portmap's DNAT on the node answers from outside with the pod's own reply.
    const entries = await runProbe(
      f.cluster,
      { kind: "external" },
      {
        target: `${node.internalIP}:${HOST_PORT}`,
        path: "/hostname",
        count: 3,
      },
    );
    expect(entries.map((e) => `${outcomeOf(e)} ${e.body ?? ""}`)).toEqual(Array(3).fill("ok web"));

    await f.k8s.core.deleteNamespacedPod({ namespace: f.ns, name: "web", gracePeriodSeconds: 0 });
    await waitFor(
      async () => {
        const left = [
          await exists(join(dir, "networks", POD_NETWORK, ip)),
          await exists(join(dir, "results", `${POD_NETWORK}-${uid}-eth0`)),
        ].filter((x) => x !== undefined);
        return left.length === 0 ? { done: true, value: undefined } : { done: false, state: left };
      },
      {
        description: "host-local's record and the cached result of the deleted pod to go",
        timeoutMs: 30_000,
      },
    );
    // The negative control: with the pod gone, portmap's rule went with it (DEL), and nothing answers.
    await waitOutcome(
      f.cluster,
      { kind: "external" },
      { target: `${node.internalIP}:${HOST_PORT}`, timeoutMs: 1_000 },
      "refused",
    );
  });
});
