import type { V1DaemonSet, V1Deployment, V1PodDisruptionBudget, V1Service } from "@kubernetes/client-node";
import { readSnapshot } from "../audit/snapshot.ts";
import { UsageError } from "../core/errors.ts";
import type { KubeClients } from "../k8s/client.ts";
import { readObjects } from "../scenario/new.ts";

export interface AdviceObjects {
  service: V1Service;
  workload?: V1Deployment | V1DaemonSet;
  pdbs: V1PodDisruptionBudget[];
}

/** The Service, its workload and PDBs from files (--from). */
export async function objectsFromFiles(files: string[]): Promise<AdviceObjects> {
  const objects = (await readObjects(files)) as { kind?: string }[];
  const services = objects.filter((o) => o.kind === "Service") as V1Service[];
  if (services.length !== 1)
    throw new UsageError(`--from holds ${services.length} Services: give exactly one, with its workload`);
  const service = services[0] as V1Service;
  const workload = objects.find((o) => o.kind === "Deployment" || o.kind === "DaemonSet") as
    | V1Deployment
    | V1DaemonSet
    | undefined;
  return {
    service,
    ...(workload && { workload }),
    pdbs: objects.filter((o) => o.kind === "PodDisruptionBudget") as V1PodDisruptionBudget[],
  };
}

/** The Service `namespace/name` of a cluster, the workload owning its pods and the PDBs over them (read-only). */
export async function objectsFromCluster(
  k8s: KubeClients,
  namespace: string,
  name: string,
): Promise<AdviceObjects> {
  const snap = await readSnapshot(k8s);
  const service = snap.services.find((s) => s.metadata?.namespace === namespace && s.metadata?.name === name);
  if (!service) throw new UsageError(`no Service ${namespace}/${name} in the cluster`);
  const selector = service.spec?.selector ?? {};
  const matches = (labels: Record<string, string> | undefined) =>
    Object.keys(selector).length > 0 && Object.entries(selector).every(([k, v]) => labels?.[k] === v);
  const inNs = <T extends { metadata?: { namespace?: string } }>(xs: T[]) =>
    xs.filter((x) => x.metadata?.namespace === namespace);
  const workload =
    inNs(snap.deployments).find((d) => matches(d.spec?.template.metadata?.labels)) ??
    inNs(snap.daemonSets).find((d) => matches(d.spec?.template.metadata?.labels));
  if (workload)
    workload.kind = snap.deployments.includes(workload as V1Deployment) ? "Deployment" : "DaemonSet";
  const labels = workload?.spec?.template.metadata?.labels;
  const pdbs = inNs(snap.pdbs).filter((p) =>
    Object.entries(p.spec?.selector?.matchLabels ?? {}).every(([k, v]) => labels?.[k] === v),
  );
  return { service: { ...service, kind: "Service", apiVersion: "v1" }, ...(workload && { workload }), pdbs };
}
