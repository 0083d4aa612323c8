/**
 * The scenario file format as a JSON Schema (draft 2020-12): the one description of its structure. Editors
 * use it through scenarios/scenario.schema.json (a file's first line
 * `# yaml-language-server: $schema=./scenario.schema.json`), and load.ts checks files against it with a
 * small interpreter of the keywords used here, so the two can never disagree. What a schema cannot say
 * (names that must be unique, references between entries, files that must exist) is checked in load.ts.
 *
 * After changing it, regenerate the JSON file (a unit test fails until you do):
 *   node_modules/.bin/node harness/scenario/schema.ts --write
 *
 * Keywords: only those load.ts interprets (it refuses any other at import): type, properties, required,
 * additionalProperties, enum, const, items, minItems, maxItems, minimum, maximum, exclusiveMinimum,
 * minLength, pattern, oneOf, anyOf, $ref (to #/$defs/...), plus the annotations description, title,
 * examples. Every alternative of a oneOf differs by type or, for mappings, by a required key: that is how
 * load.ts picks the alternative to report errors against.
 */
import { writeFileSync } from "node:fs";
import { STEP_KINDS, VERDICTS } from "./types.ts";

export interface JsonSchema {
  $schema?: string;
  $id?: string;
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  title?: string;
  description?: string;
  examples?: unknown[];
  type?: "object" | "array" | "string" | "number" | "integer" | "boolean" | "null";
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  enum?: unknown[];
  const?: unknown;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  minLength?: number;
  pattern?: string;
  oneOf?: JsonSchema[];
  anyOf?: JsonSchema[];
}

const ref = (name: string, description: string): JsonSchema => ({ $ref: `#/$defs/${name}`, description });

// A Kubernetes object name (DNS-1123 label), as Services, Deployments and DaemonSets have.
const NAME = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
// A node: its 1-based index in the cluster, or its name.
const NODE = "[a-z0-9.-]+";

/** One schema per step action, keyed by the action's name (the step's only key besides `id`). */
const STEP_ACTIONS: Record<(typeof STEP_KINDS)[number], JsonSchema> = {
  rolloutRestart: ref("workload", "Restart a workload's pods the way `kubectl rollout restart` does."),
  rollout: {
    description: "Roll a workload out to a changed pod template (merged into the current one).",
    type: "object",
    properties: {
      workload: ref("workload", "The workload to roll out."),
      template: { description: "A merge patch for the workload's pod template.", type: "object" },
    },
    required: ["workload", "template"],
    additionalProperties: false,
  },
  scale: {
    description: "Scale a Deployment.",
    type: "object",
    properties: {
      deployment: ref("name", "The Deployment's name."),
      replicas: { description: "The new number of replicas.", type: "integer", minimum: 0 },
    },
    required: ["deployment", "replicas"],
    additionalProperties: false,
  },
  deletePod: {
    description: "Delete the pods a label selector picks.",
    type: "object",
    properties: {
      selector: {
        description: "A label selector, as `kubectl get pods -l` takes it.",
        type: "string",
        minLength: 1,
        examples: ["app=web"],
      },
    },
    required: ["selector"],
    additionalProperties: false,
  },
  cordon: ref("node", "Mark a node unschedulable."),
  uncordon: ref("node", "Mark a node schedulable again."),
  drain: {
    description:
      "Drain a node through the eviction API (PodDisruptionBudgets honoured): a node, or { node, timeoutSeconds }.",
    oneOf: [
      ref("node", "The node to drain."),
      {
        description: "The node to drain, and how long to wait for it.",
        type: "object",
        properties: {
          node: ref("node", "The node to drain."),
          timeoutSeconds: {
            description: "How long the drain may take (seconds).",
            type: "integer",
            minimum: 1,
            maximum: 3600,
          },
        },
        required: ["node"],
        additionalProperties: false,
      },
    ],
  },
  taint: {
    description: "Add a taint to a node.",
    type: "object",
    properties: {
      node: ref("node", "The node to taint."),
      key: ref("taintKey", "The taint's key."),
      value: { description: "The taint's value.", type: "string" },
      effect: ref("taintEffect", "The taint's effect."),
    },
    required: ["node", "key", "effect"],
    additionalProperties: false,
  },
  untaint: {
    description: "Remove a taint from a node.",
    type: "object",
    properties: {
      node: ref("node", "The node to remove the taint from."),
      key: ref("taintKey", "The taint's key."),
      effect: ref("taintEffect", "The taint's effect."),
    },
    required: ["node", "key", "effect"],
    additionalProperties: false,
  },
  patch: {
    description: "Apply a merge patch to one of the scenario's objects.",
    type: "object",
    properties: {
      object: {
        description: "The object, as KIND/NAME.",
        type: "string",
        pattern: `^(service|deployment|daemonset)/${NAME}$`,
        examples: ["service/web"],
      },
      patch: { description: "A JSON merge patch.", type: "object" },
    },
    required: ["object", "patch"],
    additionalProperties: false,
  },
  stopNode: ref("node", "Stop a node at once, like a power cut: kube-proxy, the agent and its pods stop."),
  startNode: ref("node", "Start a stopped node again."),
  rollNodes: {
    description: "Replace nodes one by one (cordon, drain, stop, start, uncordon): a list of nodes, or all.",
    oneOf: [
      { description: "Every node of the cluster, in order.", const: "all" },
      {
        description: "These nodes, in this order.",
        type: "array",
        minItems: 1,
        items: ref("node", "A node to roll."),
      },
    ],
  },
  rollKubeProxy: {
    description: "Replace kube-proxy with another release, node by node.",
    type: "object",
    properties: {
      version: ref("release", "The kube-proxy release to run."),
      nodes: {
        description: "The nodes to roll (default: every node).",
        type: "array",
        minItems: 1,
        items: ref("node", "A node whose kube-proxy is replaced."),
      },
    },
    required: ["version"],
    additionalProperties: false,
  },
  waitEndpoints: {
    description: "Wait until a Service has exactly this many ready endpoints.",
    type: "object",
    properties: {
      service: ref("name", "The Service's name."),
      count: { description: "The number of ready endpoints to wait for.", type: "integer", minimum: 0 },
    },
    required: ["service", "count"],
    additionalProperties: false,
  },
  sleep: { description: "Wait this many seconds.", type: "number", minimum: 0, maximum: 600 },
};

export const SCENARIO_SCHEMA: JsonSchema = {
  $schema: "https://json-schema.org/draft/2020-12/schema",
  title: "tph scenario",
  description:
    "A traffic-policy-harness scenario: objects to create, traffic to send, steps to take while it flows, and the verdicts that must hold (docs/scenario-format.md).",
  type: "object",
  properties: {
    name: {
      description: "The scenario's name, as reports show it.",
      type: "string",
      minLength: 1,
      examples: ["etp-local-single-replica-rollout"],
    },
    description: { description: "What the scenario does, at more length.", type: "string" },
    reproduces: {
      description: "What it reproduces, in a sentence, and where it was reported.",
      type: "string",
    },
    links: {
      description: "Issues, pull requests or reports about it.",
      type: "array",
      items: {
        description: "An http(s) address.",
        type: "string",
        pattern: "^https?://",
        examples: ["https://github.com/kubernetes/kubernetes/issues/131765"],
      },
    },
    knownFailure: {
      description:
        "The scenario fails on purpose (it reproduces an unsafe setup or a bug): these verdicts must fail, and only these.",
      type: "object",
      properties: {
        verdicts: {
          description: "The verdicts that fail (each one of the scenario's expectations).",
          type: "array",
          minItems: 1,
          items: ref("verdict", "A verdict that fails."),
        },
        because: { description: "Why they fail, in a sentence.", type: "string", minLength: 1 },
      },
      required: ["verdicts", "because"],
      additionalProperties: false,
    },
    releases: {
      description:
        "For a reported upstream bug: the kube-proxy release it was reported on and the one that fixed it.",
      type: "object",
      properties: {
        reported: ref("release", "The release the bug was reported on."),
        fixed: ref("release", "The first release with the fix."),
      },
      required: ["reported", "fixed"],
      additionalProperties: false,
    },
    cluster: {
      description: "The cluster to run on (default: 2 nodes, iptables, the pinned kube-proxy release).",
      type: "object",
      properties: {
        nodes: {
          description: "How many nodes (1-10), or one entry per node.",
          oneOf: [
            { description: "The number of nodes.", type: "integer", minimum: 1, maximum: 10 },
            {
              description: "One entry per node.",
              type: "array",
              minItems: 1,
              maxItems: 10,
              items: {
                description: "A node.",
                type: "object",
                properties: {
                  zone: {
                    description: "The node's topology.kubernetes.io/zone label.",
                    type: "string",
                    minLength: 1,
                  },
                  labels: {
                    description: "More labels for the node.",
                    type: "object",
                    additionalProperties: { description: "A label's value.", type: "string" },
                  },
                  kubeProxyVersion: ref("release", "This node's kube-proxy release."),
                },
                additionalProperties: false,
              },
            },
          ],
        },
        proxyMode: {
          description: "kube-proxy's mode.",
          type: "string",
          enum: ["iptables", "nftables"],
        },
        kubeProxyVersion: ref("release", "Every node's kube-proxy release (built on demand)."),
        kubeProxyConfig: {
          description: "A KubeProxyConfiguration merge patch.",
          type: "object",
          examples: [{ detectLocalMode: "NodeCIDR" }],
        },
      },
      additionalProperties: false,
    },
    objects: {
      description:
        "The Kubernetes objects to create in the scenario's namespace: manifest files (relative to the scenario file; several documents separated by ---) or inline manifests.",
      type: "array",
      minItems: 1,
      items: {
        description: "A manifest file's path, or an inline manifest.",
        oneOf: [
          {
            description: "A manifest file, relative to the scenario file.",
            type: "string",
            minLength: 1,
            examples: ["manifests/web.yaml"],
          },
          ref("manifest", "An inline manifest."),
        ],
      },
    },
    traffic: {
      description: "Continuous traffic to send while the steps run; every request goes in the ledger.",
      type: "array",
      minItems: 1,
      items: {
        description: "One traffic path.",
        type: "object",
        properties: {
          name: {
            description: "Unique: what reports and expectations call this path.",
            type: "string",
            minLength: 1,
            examples: ["external->lb"],
          },
          from: {
            description:
              "The source: external, pod@NODE (a pod on that node) or host@NODE (a host-network pod); NODE is a 1-based index or a node name.",
            type: "string",
            pattern: `^(external|(pod|host)@${NODE})$`,
            examples: ["external", "pod@1", "host@2"],
          },
          to: {
            description: "The destination: loadbalancer:SERVICE, clusterip:SERVICE or nodeport:SERVICE@NODE.",
            type: "string",
            pattern: `^((loadbalancer|clusterip):${NAME}|nodeport:${NAME}@${NODE})$`,
            examples: ["loadbalancer:web", "clusterip:web", "nodeport:web@2"],
          },
          port: {
            description: "The Service port (default: its first).",
            type: "integer",
            minimum: 1,
            maximum: 65535,
          },
          path: {
            description: "The HTTP path (default /hostname), or the UDP command for mode udp.",
            type: "string",
            examples: ["/hostname", "/clientip"],
          },
          mode: {
            description:
              "http (a connection per request), keepalive (one connection reused), tcp or udp (default http).",
            type: "string",
            enum: ["http", "keepalive", "tcp", "udp"],
          },
          rate: {
            description: "Requests per second (default 20).",
            type: "number",
            exclusiveMinimum: 0,
            maximum: 500,
          },
          localPort: {
            description: "Send every request from this source port (one conntrack entry).",
            type: "integer",
            minimum: 1024,
            maximum: 65535,
          },
          timeoutMs: {
            description: "Each request's timeout in milliseconds (default 1000).",
            type: "integer",
            minimum: 100,
            maximum: 10000,
          },
        },
        required: ["name", "from", "to"],
        additionalProperties: false,
      },
    },
    steps: {
      description: "Actions to take in order while the traffic flows.",
      type: "array",
      items: {
        description: "One action: a mapping with exactly one action key, and an optional id.",
        oneOf: STEP_KINDS.map(
          (kind): JsonSchema => ({
            title: kind,
            type: "object",
            properties: {
              id: ref("stepId", "Names this step for expectation windows (default: its 1-based position)."),
              [kind]: STEP_ACTIONS[kind],
            },
            required: [kind],
            additionalProperties: false,
          }),
        ),
      },
    },
    expect: {
      description: "The verdicts that must hold, judged together.",
      type: "array",
      minItems: 1,
      items: {
        description: "One verdict, on some traffic paths, over a window of the run.",
        type: "object",
        properties: {
          verdict: ref("verdict", "What must hold."),
          paths: {
            description: "The traffic paths it judges (default: every one).",
            type: "array",
            minItems: 1,
            items: { description: "A traffic entry's name.", type: "string" },
          },
          window: {
            description:
              "Which requests: the whole run (default), or those before, during or after a step. STEP is a step's id or its 1-based position.",
            oneOf: [
              { description: "Every request of the run.", const: "whole" },
              {
                description: "The requests before a step started.",
                type: "object",
                properties: { before: ref("stepRef", "The step.") },
                required: ["before"],
                additionalProperties: false,
              },
              {
                description: "The requests while a step ran.",
                type: "object",
                properties: { during: ref("stepRef", "The step.") },
                required: ["during"],
                additionalProperties: false,
              },
              {
                description: "The requests after a step ended.",
                type: "object",
                properties: { after: ref("stepRef", "The step.") },
                required: ["after"],
                additionalProperties: false,
              },
            ],
          },
          withinMs: {
            description:
              "RecoveredWithin only (and required there): healthy again at most this long after the window's step ended.",
            type: "integer",
            minimum: 1,
          },
        },
        required: ["verdict"],
        additionalProperties: false,
      },
    },
  },
  required: ["name", "objects", "traffic", "expect"],
  additionalProperties: false,
  $defs: {
    name: {
      description: "A Kubernetes object name.",
      type: "string",
      pattern: `^${NAME}$`,
      examples: ["web"],
    },
    node: {
      description: "A node: its 1-based index in the cluster, or its name.",
      oneOf: [
        { description: "The node's 1-based index.", type: "integer", minimum: 1 },
        { description: "The node's name.", type: "string", pattern: `^${NODE}$` },
      ],
    },
    workload: {
      description: "A workload, as deployment/NAME or daemonset/NAME.",
      type: "string",
      pattern: `^(deployment|daemonset)/${NAME}$`,
      examples: ["deployment/web", "daemonset/web"],
    },
    release: {
      description: "A Kubernetes release.",
      type: "string",
      pattern: "^v1\\.\\d+\\.\\d+$",
      examples: ["v1.33.5"],
    },
    verdict: {
      description: "A verdict (docs/scenario-format.md#verdicts).",
      type: "string",
      enum: [...VERDICTS],
    },
    taintKey: {
      description: "A taint key.",
      type: "string",
      minLength: 1,
      examples: ["ToBeDeletedByClusterAutoscaler"],
    },
    taintEffect: {
      description: "A taint effect.",
      type: "string",
      enum: ["NoSchedule", "PreferNoSchedule", "NoExecute"],
    },
    // Ids start with a letter so that they never look like a position (windows take both).
    stepId: {
      description: "A step's name: a letter, then letters, digits, '.', '_' or '-'.",
      type: "string",
      pattern: "^[A-Za-z][A-Za-z0-9._-]*$",
      examples: ["rollout"],
    },
    stepRef: {
      description: "A step: its id, or its 1-based position.",
      oneOf: [
        { description: "The step's 1-based position.", type: "integer", minimum: 1 },
        { description: "The step's id.", type: "string", minLength: 1 },
      ],
    },
    manifest: {
      description: "A Kubernetes manifest.",
      type: "object",
      properties: {
        apiVersion: { description: "The object's API version.", type: "string", minLength: 1 },
        kind: { description: "The object's kind.", type: "string", minLength: 1 },
        metadata: {
          description: "The object's metadata (its namespace is the scenario's).",
          type: "object",
          properties: { name: { description: "The object's name.", type: "string", minLength: 1 } },
          required: ["name"],
        },
      },
      required: ["apiVersion", "kind", "metadata"],
    },
  },
};

/** The JSON file's exact text (a unit test compares it). */
export function schemaJson(): string {
  return `${JSON.stringify(SCENARIO_SCHEMA, null, 2)}\n`;
}

if (import.meta.main) {
  if (process.argv.includes("--write")) {
    const file = new URL("../../scenarios/scenario.schema.json", import.meta.url);
    writeFileSync(file, schemaJson());
    process.stdout.write(`wrote ${file.pathname}\n`);
  } else process.stdout.write(schemaJson());
}
