import { readFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { UsageError } from "../core/errors.ts";
import { checkScenarioText, formatScenarioError, loadScenario, ScenarioFileError } from "./load.ts";
import { type JsonSchema, SCENARIO_SCHEMA } from "./schema.ts";
import type { Scenario } from "./types.ts";

// Relative, as a user would name the file, so the messages below read like the real ones.
const testdata = relative(process.cwd(), join(import.meta.dirname, "testdata"));

/** The errors of a scenario text, formatted as the CLI prints them. */
function errorsOf(text: string, file = join(testdata, "inline.yaml")): string[] {
  const { scenario, errors } = checkScenarioText(text, file);
  if (errors.length === 0) expect(scenario).toBeDefined();
  return errors.map(formatScenarioError);
}

const MINIMAL = `name: minimal
objects: [{ apiVersion: v1, kind: Service, metadata: { name: web } }]
traffic:
  - { name: a, from: external, to: loadbalancer:web }
`;

describe("the bar: a misspelt field, a wrong type and a missing manifest", () => {
  const file = join(testdata, "bar.yaml");
  const expected = [
    `${file}:5:5: objects[1]: manifest file manifests/nope.yaml does not exist (resolved to ${resolve(testdata, "manifests/nope.yaml")})`,
    `${file}:10:5: traffic[0].rat: unknown field (did you mean "rate"? known: name, from, to, port, path, mode, rate, localPort, timeoutMs)`,
    `${file}:14:11: traffic[1].rate: expected a number, got a string ("fast")`,
  ];

  it("are exactly three errors, each at its line and column", () => {
    expect(errorsOf(readFileSync(file, "utf8"), file)).toEqual(expected);
  });

  it("make loadScenario reject the file with all three, as a usage error (exit code 2)", async () => {
    const err = await loadScenario(file).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ScenarioFileError);
    expect(err).toBeInstanceOf(UsageError);
    const e = err as ScenarioFileError;
    expect(e.exitCode).toBe(2);
    expect(e.errors).toHaveLength(3);
    expect(e.errors[1]).toEqual({
      file,
      line: 10,
      column: 5,
      path: "traffic[0].rat",
      message:
        'unknown field (did you mean "rate"? known: name, from, to, port, path, mode, rate, localPort, timeoutMs)',
    });
    expect(e.message).toBe(`${file} is not a valid scenario (3 errors):\n${expected.join("\n")}`);
  });
});

describe("loadScenario", () => {
  it("reads a file with every step kind and both forms of objects into a Scenario", async () => {
    const file = join(testdata, "valid.yaml");
    const s = await loadScenario(file);
    const manifests = readFileSync(join(testdata, "manifests/web.yaml"), "utf8");
    expect(manifests).toContain("---\n---\n"); // the empty document between the two objects is skipped
    expect(s).toStrictEqual<Scenario>({
      file: resolve(file),
      name: "every-step",
      description: "A fixture, not a scenario to run.",
      reproduces: "nothing",
      links: ["https://example.com/issues/1"],
      knownFailure: { verdicts: ["NoDrops"], because: "the fixture says so" },
      releases: { reported: "v1.33.5", fixed: "v1.33.6" },
      cluster: {
        nodes: [{}, {}, {}],
        proxyMode: "nftables",
        kubeProxyVersion: "v1.33.5",
        kubeProxyConfig: { detectLocalMode: "NodeCIDR" },
      },
      objects: [
        {
          apiVersion: "apps/v1",
          kind: "Deployment",
          metadata: { name: "web" },
          spec: {
            replicas: 2,
            selector: { matchLabels: { app: "web" } },
            template: {
              metadata: { labels: { app: "web" } },
              spec: {
                containers: [{ name: "netexec", image: "registry.k8s.io/e2e-test-images/agnhost:2.53" }],
              },
            },
          },
        },
        {
          apiVersion: "policy/v1",
          kind: "PodDisruptionBudget",
          metadata: { name: "web" },
          spec: { maxUnavailable: 1, selector: { matchLabels: { app: "web" } } },
        },
        {
          apiVersion: "v1",
          kind: "Service",
          metadata: { name: "web" },
          spec: { type: "LoadBalancer", selector: { app: "web" }, ports: [{ port: 80, targetPort: 8080 }] },
        },
      ],
      traffic: [
        {
          name: "external->lb",
          from: "external",
          to: "loadbalancer:web",
          port: 80,
          path: "/hostname",
          mode: "keepalive",
          rate: 20,
          localPort: 40000,
          timeoutMs: 1000,
        },
        { name: "pod@2->nodeport", from: "pod@2", to: "nodeport:web@3" },
      ],
      steps: [
        { id: "1", kind: "rolloutRestart", workload: "deployment/web" },
        {
          id: "roll",
          kind: "rollout",
          workload: "daemonset/web",
          template: { metadata: { labels: { v: "2" } } },
        },
        { id: "3", kind: "scale", deployment: "web", replicas: 3 },
        { id: "4", kind: "deletePod", selector: "app=web" },
        { id: "5", kind: "cordon", node: "2" },
        { id: "6", kind: "uncordon", node: "tph-worker" },
        { id: "7", kind: "drain", node: "2" },
        { id: "8", kind: "drain", node: "3", timeoutSeconds: 60 },
        {
          id: "9",
          kind: "taint",
          node: "2",
          key: "ToBeDeletedByClusterAutoscaler",
          value: "1",
          effect: "NoSchedule",
        },
        { id: "10", kind: "untaint", node: "2", key: "ToBeDeletedByClusterAutoscaler", effect: "NoSchedule" },
        {
          id: "11",
          kind: "patch",
          object: "service/web",
          patch: { spec: { externalTrafficPolicy: "Cluster" } },
        },
        { id: "12", kind: "stopNode", node: "2" },
        { id: "13", kind: "startNode", node: "2" },
        { id: "14", kind: "rollNodes", nodes: ["1", "2"] },
        { id: "15", kind: "rollNodes", nodes: ["1", "2", "3"] },
        { id: "16", kind: "rollKubeProxy", version: "v1.37.2", nodes: ["1"] },
        { id: "17", kind: "rollKubeProxy", version: "v1.37.2" },
        { id: "18", kind: "waitEndpoints", service: "web", count: 2 },
        { id: "pause", kind: "sleep", seconds: 0.5 },
      ],
      expect: [
        { verdict: "NoDrops", paths: ["external->lb"] },
        { verdict: "DropsDetected", window: { during: "roll" } },
        { verdict: "RecoveredWithin", window: { after: "7" }, withinMs: 3000 },
        { verdict: "SourceIpPreserved", paths: ["pod@2->nodeport"], window: { before: "pause" } },
      ],
    });
  });

  it("defaults to two nodes and keeps a list of nodes as it is", () => {
    expect(
      checkScenarioText(`${MINIMAL}expect: [{ verdict: NoDrops }]\n`, "m.yaml").scenario?.cluster,
    ).toEqual({
      nodes: [{}, {}],
    });
    const nodes =
      "cluster:\n  nodes:\n    - { zone: a, labels: { example.com/rack: r1 } }\n    - { kubeProxyVersion: v1.34.0 }\n";
    expect(
      checkScenarioText(`${MINIMAL}${nodes}expect: [{ verdict: NoDrops }]\n`, "m.yaml").scenario?.cluster,
    ).toEqual({
      nodes: [{ zone: "a", labels: { "example.com/rack": "r1" } }, { kubeProxyVersion: "v1.34.0" }],
    });
  });

  it("says when the file itself is missing", async () => {
    await expect(loadScenario(join(testdata, "nope.yaml"))).rejects.toThrow(
      /scenario file .*nope.yaml does not exist/,
    );
  });
});

describe("checkScenarioText", () => {
  const file = join(testdata, "inline.yaml");

  it("reports a YAML syntax error at its position", () => {
    expect(errorsOf(`${MINIMAL}description: a: b\nexpect: [{ verdict: NoDrops }]\n`)).toEqual([
      `${file}:5:14: Nested mappings are not allowed in compact mappings`,
    ]);
    expect(errorsOf(`${MINIMAL}name: again\nexpect: [{ verdict: NoDrops }]\n`)).toEqual([
      `${file}:5:1: Map keys must be unique`,
    ]);
  });

  it("reports a window naming a step that does not exist, at the reference", () => {
    const text = `${MINIMAL}steps:
  - { id: roll, rolloutRestart: deployment/web }
expect:
  - { verdict: NoDrops, window: { during: rol } }
  - { verdict: NoDrops, window: { after: 2 } }
`;
    expect(errorsOf(text)).toEqual([
      `${file}:8:43: expect[0].window.during: no step with id "rol" (did you mean "roll"?) (step ids: roll)`,
      `${file}:9:42: expect[1].window.after: no step 2 (the scenario has 1 step)`,
    ]);
  });

  it("checks references, unique names and withinMs", () => {
    const text = `${MINIMAL}  - { name: a, from: pod@3, to: clusterip:web }
steps:
  - { id: x, cordon: 1 }
  - { id: x, sleep: 1 }
expect:
  - { verdict: NoDrops, paths: [b] }
  - { verdict: NoDrops, withinMs: 100 }
  - { verdict: RecoveredWithin, window: { after: x } }
knownFailure: { verdicts: [Refused], because: it does }
`;
    expect(errorsOf(text)).toEqual([
      `${file}:5:13: traffic[1].name: duplicate traffic name "a" (traffic[0] has it too)`,
      `${file}:5:22: traffic[1].from: node 3 does not exist: the cluster has 2 nodes`,
      `${file}:8:11: steps[1].id: duplicate step id "x" (steps[0] has it too)`,
      `${file}:10:33: expect[0].paths[0]: no traffic named "b" (did you mean "a"?) (traffic: a)`,
      `${file}:11:25: expect[1].withinMs: only allowed with verdict RecoveredWithin, not NoDrops`,
      `${file}:12:16: expect[2].verdict: RecoveredWithin needs withinMs (how long recovery may take)`,
      `${file}:13:28: knownFailure.verdicts[0]: no expectation has verdict Refused, so it cannot fail`,
    ]);
  });

  it("reports unions against the alternative meant: a step's action, a window, a node", () => {
    const text = `${MINIMAL}steps:
  - { rolloutRestat: deployment/web }
  - { cordon: 1, uncordon: 1 }
  - { drain: { nod: 1 } }
  - { drain: true }
expect:
  - { verdict: NoDrop, window: partial }
`;
    expect(errorsOf(text)).toEqual([
      `${file}:6:7: steps[0].rolloutRestat: unknown field (did you mean "rolloutRestart"? known: id, rolloutRestart, rollout, scale, deletePod, cordon, uncordon, drain, taint, untaint, patch, stopNode, startNode, rollNodes, rollKubeProxy, waitEndpoints, sleep)`,
      `${file}:7:5: steps[1]: has "cordon" and "uncordon": only one is allowed`,
      `${file}:8:16: steps[2].drain.nod: unknown field (did you mean "node"? known: node, timeoutSeconds)`,
      `${file}:9:14: steps[3].drain: expected an integer, a string or a mapping, got a boolean (true)`,
      `${file}:11:16: expect[0].verdict: expected one of NoDrops, SourceIpPreserved, SourceIpSnat, Dropped, Refused, Blackholed, DropsDetected, RecoveredWithin, got "NoDrop" (did you mean "NoDrops"?)`,
      `${file}:11:32: expect[0].window: expected "whole", got "partial"`,
    ]);
  });

  it("reports a manifest file's own errors at the list item, with their place in that file", () => {
    const text = `name: m
objects: [manifests/web.yaml, "", 3]
traffic: [{ name: a, from: external, to: loadbalancer:web }]
expect: [{ verdict: NoDrops }]
`;
    expect(errorsOf(text)).toEqual([
      `${file}:2:31: objects[1]: expected a non-empty string`,
      `${file}:2:35: objects[2]: expected a string or a mapping, got a number (3)`,
    ]);
    const missingName = `name: m
objects: [{ apiVersion: v1, kind: Service, metadata: { nam: web } }]
traffic: [{ name: a, from: external, to: loadbalancer:web }]
expect: [{ verdict: NoDrops }]
`;
    expect(errorsOf(missingName)).toEqual([
      `${file}:2:54: objects[0].metadata: missing required field "name"`,
    ]);
  });
});

describe("the schema", () => {
  it("is in sync with scenarios/scenario.schema.json (regenerate: node harness/scenario/schema.ts --write)", () => {
    const written = readFileSync(join(import.meta.dirname, "../../scenarios/scenario.schema.json"), "utf8");
    expect(written).toBe(`${JSON.stringify(SCENARIO_SCHEMA, null, 2)}\n`);
  });

  it("describes every property, for editors", () => {
    const undescribed: string[] = [];
    const walk = (s: JsonSchema, where: string) => {
      for (const [k, sub] of Object.entries(s.properties ?? {})) {
        if (!sub.description) undescribed.push(`${where}.${k}`);
        walk(sub, `${where}.${k}`);
      }
      for (const [k, sub] of Object.entries(s.$defs ?? {})) walk(sub, `$defs.${k}`);
      if (s.items) walk(s.items, `${where}[]`);
      if (typeof s.additionalProperties === "object") walk(s.additionalProperties, `${where}.*`);
      for (const sub of s.oneOf ?? s.anyOf ?? []) walk(sub, where);
    };
    walk(SCENARIO_SCHEMA, "");
    expect(undescribed).toEqual([]);
  });
});
