import type { V1DaemonSet, V1Deployment, V1PodTemplateSpec } from "@kubernetes/client-node";
import { AGNHOST } from "./workloads.ts";

/**
 * Backends for disruption suites, as data. `safe` is the setup upstream's rollout test relies on and we
 * hold to zero drops: a readiness probe on netexec's /readyz (503 from SIGTERM on, so the endpoint turns
 * not-serving while the process keeps answering), --delay-shutdown so it keeps answering until every
 * kube-proxy has dropped it, a grace period longer than that, and rollouts that surge before they
 * remove (maxUnavailable 0). `unsafe` has none of these: the known-bad variant that must show drops.
 */
export interface BackendOptions {
  safe: boolean;
  /** Seconds netexec keeps serving after SIGTERM (safe only). Default 5. */
  delayShutdownSeconds?: number;
  /** Spread replicas one per node (topology spread on hostname, hard). */
  spread?: boolean;
}

function template(name: string, o: BackendOptions): V1PodTemplateSpec {
  const delay = o.delayShutdownSeconds ?? 5;
  return {
    metadata: { labels: { app: name } },
    spec: {
      containers: [
        {
          name: "netexec",
          image: AGNHOST,
          // /readyz answers 200 only once the UDP server runs: keep it on in the safe variant.
          args: o.safe
            ? ["netexec", "--http-port=8080", "--udp-port=8081", `--delay-shutdown=${delay}`]
            : ["netexec", "--http-port=8080", "--udp-port=-1"],
          ...(o.safe && {
            readinessProbe: {
              httpGet: { path: "/readyz", port: 8080 },
              periodSeconds: 1,
              failureThreshold: 1,
              successThreshold: 1,
            },
          }),
        },
      ],
      terminationGracePeriodSeconds: o.safe ? delay + 10 : 30,
      ...(o.spread && {
        topologySpreadConstraints: [
          {
            maxSkew: 1,
            topologyKey: "kubernetes.io/hostname",
            whenUnsatisfiable: "DoNotSchedule",
            // A cordoned node is not a domain to balance over: pods evicted from it may double up elsewhere.
            nodeTaintsPolicy: "Honor",
            labelSelector: { matchLabels: { app: name } },
          },
        ],
      }),
    },
  };
}

export function backendDeployment(name: string, replicas: number, o: BackendOptions): V1Deployment {
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      strategy: {
        type: "RollingUpdate",
        rollingUpdate: o.safe ? { maxUnavailable: 0, maxSurge: 1 } : { maxUnavailable: 1, maxSurge: 0 },
      },
      template: template(name, o),
    },
  };
}

/** A backend on every node: what keeps an externalTrafficPolicy Local Service served everywhere. */
export function backendDaemonSet(name: string, o: BackendOptions): V1DaemonSet {
  return {
    metadata: { name },
    spec: {
      selector: { matchLabels: { app: name } },
      updateStrategy: {
        type: "RollingUpdate",
        rollingUpdate: o.safe ? { maxUnavailable: 0, maxSurge: 1 } : { maxUnavailable: 1, maxSurge: 0 },
      },
      template: template(name, o),
    },
  };
}
