import type { V1Deployment, V1Pod, V1Service } from "@kubernetes/client-node";

/** Workloads and Service variants as data, so a suite states what differs and nothing else. */
export const AGNHOST = "registry.k8s.io/e2e-test-images/agnhost:2.53";

export function netexecPod(
  name: string,
  options: { node?: string; labels?: Record<string, string>; args?: string[] } = {},
): V1Pod {
  return {
    metadata: { name, labels: { app: name, ...options.labels } },
    spec: {
      ...(options.node && { nodeSelector: { "kubernetes.io/hostname": options.node } }),
      containers: [
        {
          name: "netexec",
          image: AGNHOST,
          args: ["netexec", "--http-port=8080", "--udp-port=-1", ...(options.args ?? [])],
        },
      ],
    },
  };
}

export function netexecDeployment(
  name: string,
  replicas: number,
  options: { node?: string; args?: string[] } = {},
): V1Deployment {
  const pod = netexecPod(name, options);
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: pod.metadata, spec: pod.spec },
    },
  };
}

export type ServiceVariant = {
  type: "ClusterIP" | "NodePort" | "LoadBalancer";
  externalTrafficPolicy?: "Local" | "Cluster";
  internalTrafficPolicy?: "Local" | "Cluster";
  /** Also UDP port 81 → 8081 (netexec --udp-port=8081 answers "hostname" and "clientip" there). */
  udp?: boolean;
  /** spec.trafficDistribution: PreferSameZone, PreferClose (its alias) or PreferSameNode. */
  trafficDistribution?: string;
};

export function service(name: string, selector: string, variant: ServiceVariant): V1Service {
  return {
    metadata: { name },
    spec: {
      type: variant.type,
      selector: { app: selector },
      ports: [
        { name: "http", port: 80, targetPort: 8080 },
        ...(variant.udp ? [{ name: "udp", port: 81, targetPort: 8081, protocol: "UDP" }] : []),
      ],
      ...(variant.externalTrafficPolicy && { externalTrafficPolicy: variant.externalTrafficPolicy }),
      ...(variant.internalTrafficPolicy && { internalTrafficPolicy: variant.internalTrafficPolicy }),
      ...(variant.trafficDistribution && { trafficDistribution: variant.trafficDistribution }),
    },
  };
}
