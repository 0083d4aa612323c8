import type { V1DaemonSet, V1Deployment, V1Service } from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { checkScenarioText } from "../scenario/load.ts";
import { type Obj, scenarioFromObjects } from "../scenario/new.ts";
import { advise } from "./advise.ts";

const service = (spec: V1Service["spec"]): V1Service => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: "shop", namespace: "prod" },
  spec: { selector: { app: "shop" }, ports: [{ port: 80, targetPort: 8080 }], ...spec },
});
const deployment: V1Deployment = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "shop" },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: "shop" } },
    template: { metadata: { labels: { app: "shop" } }, spec: { containers: [{ name: "app", image: "x" }] } },
  },
};

describe("tph advise", () => {
  it("source-ip: eTP Local, and the DaemonSet, probes and surge-first rollout it depends on", () => {
    const a = advise({
      service: service({ type: "LoadBalancer" }),
      workload: deployment,
      pdbs: [],
      goal: "source-ip",
    });
    expect(a.spec.find((s) => s.field === "spec.externalTrafficPolicy")?.value).toBe("Local");
    expect(a.spec.find((s) => s.field === "spec.internalTrafficPolicy")?.value).toBe("Cluster");
    expect(a.placement.filter((p) => !p.met).map((p) => p.what.split(" ").slice(0, 3).join(" "))).toEqual([
      "a ready backend",
      "a readiness probe",
      "rollouts that start",
    ]);
    const ds = a.advised.find((o) => o.kind === "DaemonSet") as V1DaemonSet;
    expect(ds.spec?.updateStrategy?.rollingUpdate).toEqual({ maxSurge: 1, maxUnavailable: 0 });
    expect(ds.spec?.template.spec?.containers[0]?.lifecycle?.preStop?.sleep?.seconds).toBe(5);
    expect(a.rollback.command).toMatch(/"externalTrafficPolicy":"Cluster"/);
    // The proving scenario is valid for both the objects as they are and as advised.
    for (const objs of [[service({ type: "LoadBalancer" }), deployment], a.advised]) {
      const doc = scenarioFromObjects(objs as Obj[], "test");
      expect(checkScenarioText(stringify(doc), "/tmp/x.yaml").errors).toEqual([]);
    }
  });

  it("the cautious goals never advise a Local policy; a met requirement says so", () => {
    const safe: V1DaemonSet = {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "shop" },
      spec: {
        selector: { matchLabels: { app: "shop" } },
        updateStrategy: { type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } },
        template: {
          metadata: { labels: { app: "shop" } },
          spec: {
            terminationGracePeriodSeconds: 15,
            containers: [{ name: "app", image: "x", readinessProbe: { periodSeconds: 1 } }],
          },
        },
      },
    };
    for (const goal of ["even-load", "zone-local"] as const) {
      const a = advise({ service: service({ type: "LoadBalancer" }), workload: deployment, pdbs: [], goal });
      expect(a.spec.every((s) => s.value !== "Local")).toBe(true);
    }
    expect(
      advise({ service: service({}), workload: deployment, pdbs: [], goal: "zone-local" }).spec.find(
        (s) => s.field === "spec.trafficDistribution",
      )?.value,
    ).toBe("PreferSameZone");
    const nodeLocal = advise({
      service: service({ type: "ClusterIP" }),
      workload: safe,
      pdbs: [],
      goal: "node-local",
    });
    expect(nodeLocal.spec.map((s) => `${s.field}=${s.value}`)).toEqual([
      "spec.internalTrafficPolicy=Local",
      "spec.trafficDistribution=undefined",
    ]);
    expect(nodeLocal.placement.every((p) => p.met)).toBe(true);
  });

  it("a Local policy on pods confined to some nodes: the DaemonSet drops what confines them", () => {
    const packed = structuredClone(deployment);
    const pod = packed.spec?.template.spec;
    if (pod) {
      pod.nodeSelector = { "kubernetes.io/hostname": "w1" };
      pod.affinity = {
        podAffinity: {
          requiredDuringSchedulingIgnoredDuringExecution: [
            { labelSelector: { matchLabels: { app: "shop" } }, topologyKey: "kubernetes.io/hostname" },
          ],
        },
      };
    }
    const a = advise({
      service: service({ type: "LoadBalancer" }),
      workload: packed,
      pdbs: [],
      goal: "source-ip",
    });
    expect(a.placement[0]?.change).toBe(
      "run shop as a DaemonSet (same pod template, without its nodeSelector and required pod affinity)",
    );
    const ds = a.advised.find((o) => o.kind === "DaemonSet") as V1DaemonSet;
    expect(ds.spec?.template.spec?.nodeSelector).toBeUndefined();
    expect(
      ds.spec?.template.spec?.affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution,
    ).toBeUndefined();
    // A DaemonSet held to some nodes does not meet it either.
    const heldDs: V1DaemonSet = {
      apiVersion: "apps/v1",
      kind: "DaemonSet",
      metadata: { name: "shop" },
      spec: { selector: packed.spec?.selector ?? {}, template: structuredClone(packed.spec?.template ?? {}) },
    };
    const held = advise({
      service: service({ type: "LoadBalancer" }),
      workload: heldDs,
      pdbs: [],
      goal: "source-ip",
    });
    expect(held.placement[0]).toMatchObject({ met: false });
    expect(held.placement[0]?.change).toMatch(/^remove the DaemonSet's nodeSelector/);
  });

  it("the health-check node port is a rollback trigger only for a LoadBalancer with eTP Local", () => {
    const hcnp = (a: ReturnType<typeof advise>) =>
      a.rollback.trigger.some((t) => t.includes("healthCheckNodePort"));
    const lb = advise({
      service: service({ type: "LoadBalancer" }),
      workload: deployment,
      pdbs: [],
      goal: "source-ip",
    });
    const cip = advise({
      service: service({ type: "ClusterIP" }),
      workload: deployment,
      pdbs: [],
      goal: "node-local",
    });
    expect(hcnp(lb)).toBe(true);
    expect(hcnp(cip)).toBe(false);
  });
});
