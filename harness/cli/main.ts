import { mkdir, readFile, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { stringify as stringifyYaml } from "yaml";
import { advise, GOALS, parseGoal, renderAdvice } from "../advise/advise.ts";
import { type AdviceObjects, objectsFromCluster, objectsFromFiles } from "../advise/input.ts";
import {
  atOrAbove,
  audit,
  auditedServices,
  renderFindings,
  SEVERITIES,
  type Severity,
} from "../audit/rules.ts";
import { readSnapshot } from "../audit/snapshot.ts";
import { type Verification, verifyFindings } from "../audit/verify.ts";
import { ensureBinaries, ensureExtraBinary } from "../cluster/local/binaries.ts";
import { getProvider } from "../cluster/providers.ts";
import {
  type ConfigOverrides,
  cniText,
  DEFAULTS,
  type HarnessConfig,
  loadConfig,
  nodeCount,
  parseClusterFile,
  parseCni,
  parseKubernetesVersion,
  parseMetallbVersion,
  parseProvider,
  parseProxyMode,
  readKubeProxyConfigFile,
} from "../core/config.ts";
import { describeError, TphError, UsageError } from "../core/errors.ts";
import { createLogger, type Logger } from "../core/logger.ts";
import { kubeClients } from "../k8s/client.ts";
import { loadScenario } from "../scenario/load.ts";
import { newScenario, type Obj, scenarioFromObjects } from "../scenario/new.ts";
import { compare, DIMENSIONS, type Dimension, diffDirs, ENV, parseSide, parseSides } from "./compare.ts";
import { doctor } from "./doctor.ts";
import { listSuites, parseRepeat, runSuites } from "./run.ts";

/**
 * `tph`: the command line. Each command is a small function over the library; parsing and configuration
 * happen here and in core/config.ts only.
 */
interface Command {
  summary: string;
  usage: string;
  options: Record<string, { type: "string" | "boolean"; short?: string; help: string }>;
  run(
    config: HarnessConfig,
    values: Record<string, string | boolean | undefined>,
    logger: Logger,
    positionals: string[],
  ): Promise<number>;
  /** Whether words after the options (after `--`) are the command's own arguments. */
  positionals?: boolean;
}

const common = {
  name: {
    type: "string",
    help: `cluster name, 1-8 of [a-z0-9] (default ${DEFAULTS.clusterName}, or TPH_CLUSTER)`,
  },
  provider: {
    type: "string",
    help: `local, kind or kubeconfig (default ${DEFAULTS.provider}, or TPH_PROVIDER)`,
  },
  kubeconfig: {
    type: "string",
    help: "kubeconfig provider: the cluster's kubeconfig (default $KUBECONFIG, then ~/.kube/config)",
  },
  context: { type: "string", help: "kubeconfig provider: the kubeconfig context to use" },
  verbose: { type: "boolean", short: "v", help: "print every command run and more detail" },
  quiet: { type: "boolean", short: "q", help: "print warnings and errors only" },
  help: { type: "boolean", short: "h", help: "show this help" },
} as const;

const commands: Record<string, Command> = {
  up: {
    summary: "bring a cluster up and leave it running",
    usage:
      "tph up [--provider local] [--name NAME] [--nodes N] [--proxy-mode iptables|nftables] [--config FILE] [--retain]",
    options: {
      ...common,
      nodes: { type: "string", help: `worker nodes (default ${DEFAULTS.nodes}, or TPH_NODES)` },
      "proxy-mode": {
        type: "string",
        help: "kube-proxy mode: iptables (default) or nftables; ipvs needs a kernel with IPVS",
      },
      "kubernetes-version": {
        type: "string",
        help: "the Kubernetes release: local builds it on demand (e.g. v1.36.3); kind runs kindest/node:VERSION",
      },
      "kube-proxy-version": {
        type: "string",
        help: "local: run this kube-proxy release on every node (built on demand, e.g. v1.35.4); per node in --config",
      },
      "kube-proxy-config": {
        type: "string",
        help: "a KubeProxyConfiguration patch (YAML file, merge patch) for every node's kube-proxy",
      },
      "metallb-version": {
        type: "string",
        help: "local: run this MetalLB release (built on demand with its own manifest, e.g. v0.15.2)",
      },
      "node-image": { type: "string", help: "kind: a full node image reference instead of a version" },
      "disable-cni": {
        type: "boolean",
        help: "kind: create the cluster without kindnet (bring your own CNI)",
      },
      cni: {
        type: "string",
        help: "the pod network, NAME[@VERSION]: default (local: the CNI reference plugins; kind: kindnet), or on kind calico or cilium (pinned release unless given)",
      },
      "kube-proxy-replacement": {
        type: "boolean",
        help: "kind with --cni cilium: Cilium replaces kube-proxy (the cluster runs none)",
      },
      config: {
        type: "string",
        help: "cluster file (YAML): per-node zones and labels, proxyMode, subnets; see docs/providers.md",
      },
      "node-subnet": {
        type: "string",
        help: `cluster network (default ${DEFAULTS.nodeSubnet}); must not collide with host routes`,
      },
      "pod-subnet": { type: "string", help: `pod network (default ${DEFAULTS.podSubnet})` },
      "service-subnet": {
        type: "string",
        help: `service ClusterIP range (default ${DEFAULTS.serviceSubnet})`,
      },
      retain: {
        type: "boolean",
        help: "keep a cluster whose bring-up failed, for debugging; prints how to delete it",
      },
      "no-install": {
        type: "boolean",
        help: "never install missing Debian packages (the preflight then stops, naming each and its package)",
      },
    },
    async run(config, values, logger) {
      const cluster = await getProvider(config.provider).up(config, {
        logger,
        retain: values.retain === true,
        install: values["no-install"] !== true,
      });
      process.stdout.write(`${cluster.kubeconfigPath}\n`);
      return 0;
    },
  },
  run: {
    summary: "run the conformance suites: verdict table, JUnit and per-test ledgers; non-zero on any failure",
    usage:
      "tph run [--provider local|kind|kubeconfig] [--proxy-mode MODE] [--suite NAME[,NAME...]] [--artifacts DIR] [--retain] [--use-running] [--cluster-per-suite] [--repeat N] [--no-install] [--kubeconfig FILE [--context NAME] [--allow-disruption] [--client-ip IP]]",
    options: {
      ...common,
      "proxy-mode": {
        type: "string",
        help: "run the suites under this kube-proxy mode only (default: iptables and nftables on local)",
      },
      "kube-proxy-version": {
        type: "string",
        help: "local: every cluster runs this kube-proxy release (built on demand, e.g. v1.35.4)",
      },
      "kube-proxy-config": {
        type: "string",
        help: "a KubeProxyConfiguration patch (YAML file, merge patch) for every cluster's kube-proxy",
      },
      "kubernetes-version": {
        type: "string",
        help: "every cluster runs this Kubernetes release: local builds it on demand (e.g. v1.36.3); kind runs kindest/node:VERSION",
      },
      "metallb-version": {
        type: "string",
        help: "local: every cluster runs this MetalLB release (built on demand, e.g. v0.15.2)",
      },
      cni: {
        type: "string",
        help: "every cluster's pod network, NAME[@VERSION]: default, or on kind calico or cilium",
      },
      "kube-proxy-replacement": {
        type: "boolean",
        help: "kind with --cni cilium: Cilium replaces kube-proxy (suites that need kube-proxy skip)",
      },
      suite: {
        type: "string",
        help: "comma-separated suite names (default: all); `tph run --list` shows them",
      },
      list: { type: "boolean", help: "list the suites and exit" },
      artifacts: { type: "string", help: "where JUnit XML and ledgers go (default artifacts/run-<time>)" },
      retain: {
        type: "boolean",
        help: "keep each suite's cluster instead of deleting it, and print how to delete it",
      },
      "use-running": {
        type: "boolean",
        help: "run every suite on the running cluster --name (from `tph up`) instead of the run's own clusters",
      },
      "cluster-per-suite": {
        type: "boolean",
        help: "give every suite a cluster of its own (by default the suites that change no node share one per proxy mode)",
      },
      "no-install": {
        type: "boolean",
        help: "never install missing Debian packages (the preflight then stops, naming each and its package)",
      },
      "allow-disruption": {
        type: "boolean",
        help: "kubeconfig provider: also run the suites that cordon, drain and taint nodes (they undo it)",
      },
      "client-ip": {
        type: "string",
        help: "kubeconfig provider: the source IP this machine's requests carry (default: from the route to the nodes)",
      },
      scenario: {
        type: "string",
        help: "scenario files to run beside the suites (comma-separated; see docs/scenario-format.md)",
      },
      repeat: {
        type: "string",
        help: "run the suites N times in a row (artifacts in DIR/repeat-<i>/) and print each test's passes, e.g. 2/3",
      },
    },
    async run(config, values, logger) {
      if (values.list) {
        for (const s of await listSuites(config.repoRoot, config.provider)) process.stdout.write(`${s}\n`);
        return 0;
      }
      const repeat = typeof values.repeat === "string" ? parseRepeat(values.repeat) : 1;
      if (typeof values["proxy-mode"] === "string")
        process.env.TPH_PROXY_MODE = parseProxyMode(values["proxy-mode"]);
      // The suites build their clusters from the environment (they run in vitest's workers).
      if (config.cluster.kubernetesVersion)
        process.env.TPH_KUBERNETES_VERSION = config.cluster.kubernetesVersion;
      if (config.cluster.kubeProxyVersion)
        process.env.TPH_KUBE_PROXY_VERSION = config.cluster.kubeProxyVersion;
      if (typeof values["kube-proxy-config"] === "string")
        process.env.TPH_KUBE_PROXY_CONFIG = resolve(values["kube-proxy-config"]);
      if (config.cluster.metallbVersion) process.env.TPH_METALLB_VERSION = config.cluster.metallbVersion;
      if (config.cluster.cni) process.env.TPH_CNI = cniText(config.cluster.cni);
      if (config.cluster.kubeProxyReplacement) {
        process.env.TPH_KUBE_PROXY_REPLACEMENT = "1";
        // No kube-proxy, so no second mode to run the suites under: one pass.
        process.env.TPH_PROXY_MODE ??= config.cluster.proxyMode;
      }
      const suites = splitList(values.suite);
      if (typeof values.scenario === "string") {
        // Read and checked now: a bad file stops the run before anything starts.
        const files = [];
        for (const f of splitList(values.scenario)) files.push((await loadScenario(f)).file);
        process.env.TPH_SCENARIOS = files.join(",");
        if (suites.length > 0 && !suites.includes("scenarios")) suites.push("scenarios");
      }
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      return runSuites(
        config,
        {
          suites,
          artifacts: typeof values.artifacts === "string" ? values.artifacts : `artifacts/run-${stamp}`,
          retain: values.retain === true,
          useRunning: values["use-running"] === true,
          clusterPerSuite: values["cluster-per-suite"] === true,
          repeat,
          install: values["no-install"] !== true,
        },
        logger,
      );
    },
  },
  scenario: {
    summary: "reproduce a behaviour from a YAML scenario: check, run, or start one from your own Service",
    usage:
      "tph scenario check FILE...  |  tph scenario run FILE... [--proxy-mode MODE] [--artifacts DIR] [--no-install]  |  tph scenario new --from service.yaml[,deployment.yaml...] [--out FILE]",
    options: {
      ...common,
      "proxy-mode": { type: "string", help: "run: the kube-proxy mode, where the scenario does not set one" },
      artifacts: {
        type: "string",
        help: "run: where JUnit, ledgers and the report go (default artifacts/run-<time>)",
      },
      "no-install": { type: "boolean", help: "run: never install missing Debian packages" },
      from: {
        type: "string",
        help: "new: your manifests (comma-separated files: a Service and its workload)",
      },
      out: { type: "string", help: "new: write the scenario here (default: standard output)" },
    },
    positionals: true,
    async run(config, values, logger, positionals) {
      const [sub, ...files] = positionals;
      if (sub === "new") {
        if (typeof values.from !== "string")
          throw new UsageError(
            "tph scenario new needs --from FILE[,FILE...]",
            "e.g. --from service.yaml,deployment.yaml",
          );
        const text = await newScenario(splitList(values.from));
        if (typeof values.out === "string") {
          await writeFile(values.out, text);
          process.stdout.write(`wrote ${values.out}; run it with: sudo bin/tph scenario run ${values.out}\n`);
        } else process.stdout.write(text);
        return 0;
      }
      if (sub !== "check" && sub !== "run")
        throw new UsageError(`unknown subcommand "${sub ?? ""}"`, "use tph scenario check|run|new");
      if (files.length === 0) throw new UsageError(`tph scenario ${sub} needs at least one FILE`);
      // Every file is read and checked before anything starts: a bad one stops the run with its errors.
      const scenarios = [];
      for (const f of files) scenarios.push(await loadScenario(f));
      if (sub === "check") {
        for (const s of scenarios) process.stdout.write(`ok  ${s.file}: ${s.name}\n`);
        return 0;
      }
      if (typeof values["proxy-mode"] === "string")
        process.env.TPH_PROXY_MODE = parseProxyMode(values["proxy-mode"]);
      process.env.TPH_SCENARIOS = scenarios.map((s) => s.file).join(",");
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      return runSuites(
        config,
        {
          suites: ["scenarios"],
          artifacts: typeof values.artifacts === "string" ? values.artifacts : `artifacts/run-${stamp}`,
          retain: false,
          install: values["no-install"] !== true,
        },
        logger,
      );
    },
  },
  compare: {
    summary:
      "run the same suites under two settings (proxy modes or kube-proxy releases) and print what differs",
    usage:
      "tph compare (--proxy-mode A,B | --kubernetes-version A,B | --kube-proxy-version A,B | --kube-proxy-config A.yaml,B.yaml) [--suite NAME[,NAME...]] [--artifacts DIR] [--no-install]",
    options: {
      ...common,
      "proxy-mode": { type: "string", help: "the two kube-proxy modes, e.g. iptables,nftables" },
      "kubernetes-version": {
        type: "string",
        help: "the two Kubernetes releases (control plane and kube-proxy), e.g. v1.36.3,v1.37.2",
      },
      "kube-proxy-version": { type: "string", help: "the two kube-proxy releases, e.g. v1.36.3,v1.37.2" },
      "kube-proxy-config": {
        type: "string",
        help: "two KubeProxyConfiguration patches (YAML files), e.g. before.yaml,after.yaml",
      },
      suite: { type: "string", help: "comma-separated suite names (default: all)" },
      artifacts: {
        type: "string",
        help: "where both runs and diff.txt go (default artifacts/compare-<time>)",
      },
      "no-install": { type: "boolean", help: "never install missing Debian packages" },
    },
    async run(config, values, logger) {
      // The setting compared is the one given as A,B; the others, given once, hold for both sides.
      const given = DIMENSIONS.filter(
        (d) => typeof values[d] === "string" && (values[d] as string).includes(","),
      );
      if (given.length !== 1)
        throw new UsageError(
          `tph compare needs exactly one of ${DIMENSIONS.map((d) => `--${d} A,B`).join(", ")}`,
          "the other settings, given once, are the same on both sides",
        );
      for (const d of DIMENSIONS) {
        const v = values[d];
        if (typeof v !== "string" || d === given[0]) continue;
        process.env[ENV[d]] = parseSide(d, v);
      }
      const dimension = given[0] as Dimension;
      const stamp = new Date().toISOString().replace(/[:.]/g, "-");
      return compare(
        config,
        {
          dimension,
          values: parseSides(dimension, values[dimension] as string),
          suites: splitList(values.suite),
          artifacts: typeof values.artifacts === "string" ? values.artifacts : `artifacts/compare-${stamp}`,
          install: values["no-install"] !== true,
        },
        logger,
      );
    },
  },
  diff: {
    summary: "compare two finished runs' verdicts: what passes in A and fails in B (non-zero), and the rest",
    usage: "tph diff RUN_A RUN_B    (artifacts directories of tph run, each with verdicts.json)",
    options: { ...common },
    positionals: true,
    async run(_config, _values, _logger, positionals) {
      const [a, b] = positionals;
      if (!a || !b || positionals.length !== 2)
        throw new UsageError(
          "tph diff needs two run directories",
          "e.g. tph diff artifacts/run-A artifacts/run-B",
        );
      return diffDirs(a, b);
    },
  },
  advise: {
    summary:
      "the Service spec for a goal, the placement it needs, a scenario that proves it, and the rollback",
    usage:
      "tph advise --goal source-ip|node-local|zone-local|even-load (--from svc.yaml,deploy.yaml[,pdb.yaml] | [--name NAME | --kubeconfig FILE] -n NS --service NAME) [--out DIR] [--json]",
    options: {
      ...common,
      goal: {
        type: "string",
        help: "what the policies are for: source-ip, node-local, zone-local or even-load",
      },
      from: { type: "string", help: "the Service and its workload (and PDB) as files, comma-separated" },
      kubeconfig: { type: "string", help: "read them from this cluster instead (read-only)" },
      namespace: {
        type: "string",
        short: "n",
        help: "the Service's namespace (with --kubeconfig or --name)",
      },
      service: { type: "string", help: "the Service's name (with --kubeconfig or --name)" },
      out: {
        type: "string",
        help: "write as-is.yaml and advised.yaml there: one scenario, with your objects and with the advice applied",
      },
      json: { type: "boolean", help: "print the advice as JSON" },
    },
    async run(config, values, logger) {
      if (typeof values.goal !== "string")
        throw new UsageError("tph advise needs --goal", `one of: ${GOALS.join(", ")}`);
      const goal = parseGoal(values.goal);
      let objects: AdviceObjects;
      if (typeof values.from === "string") objects = await objectsFromFiles(splitList(values.from));
      else {
        if (typeof values.service !== "string")
          throw new UsageError("tph advise needs --from FILES, or --service NAME (with -n NS) on a cluster");
        const kubeconfigPath =
          typeof values.kubeconfig === "string"
            ? values.kubeconfig
            : (await attachOrFail(config, logger)).kubeconfigPath;
        objects = await objectsFromCluster(
          kubeClients(kubeconfigPath),
          typeof values.namespace === "string" ? values.namespace : "default",
          values.service,
        );
      }
      const advice = advise({ ...objects, goal });
      if (values.json) process.stdout.write(`${JSON.stringify(advice, null, 1)}\n`);
      else process.stdout.write(renderAdvice(advice));
      if (typeof values.out === "string") {
        await mkdir(values.out, { recursive: true });
        const current = [objects.service, ...(objects.workload ? [objects.workload] : []), ...objects.pdbs];
        const header = "# Written by tph advise: run it with `sudo bin/tph scenario run FILE`\n";
        for (const [file, objs, what] of [
          ["as-is.yaml", current, "the objects as they are"],
          ["advised.yaml", advice.advised, "the objects with the advice applied"],
        ] as const) {
          const doc = scenarioFromObjects(
            objs as Obj[],
            `tph advise (${goal}), ${what}`,
            `${advice.service.split("/")[1]}-${file.replace(".yaml", "")}`,
          );
          await writeFile(join(values.out, file), `${header}${stringifyYaml(doc)}`);
        }
        process.stdout.write(
          `\n(c) the proof: one scenario (source IP, zero drops through a rollout and a drain), on your objects and on the advised ones:\n    sudo bin/tph scenario run ${join(values.out, "as-is.yaml")}      # expected to fail where the advice says TODO\n    sudo bin/tph scenario run ${join(values.out, "advised.yaml")}    # expected to pass\n`,
        );
      }
      return 0;
    },
  },
  audit: {
    summary: "check every Service with a Local policy or zone routing against its placement (read-only)",
    usage: "tph audit [--name NAME | --kubeconfig FILE] [--fail-on high|medium|low] [--json] [--verify]",
    options: {
      ...common,
      kubeconfig: {
        type: "string",
        help: "audit the cluster of this kubeconfig (default: tph's cluster --name)",
      },
      "fail-on": { type: "string", help: "exit 1 on a finding at or above this severity (default high)" },
      json: { type: "boolean", help: "print the findings as JSON" },
      verify: {
        type: "boolean",
        help: "send 3 bounded requests from each flagged node to say which findings are blackholes now (needs a tph cluster; makes a namespace and deletes it)",
      },
    },
    async run(config, values, logger) {
      const failOn = (values["fail-on"] ?? "high") as Severity;
      if (!SEVERITIES.includes(failOn))
        throw new UsageError(
          `--fail-on ${failOn}: unknown severity`,
          `choose one of: ${SEVERITIES.join(", ")}`,
        );
      const kubeconfigPath =
        typeof values.kubeconfig === "string"
          ? values.kubeconfig
          : (await attachOrFail(config, logger)).kubeconfigPath;
      const k8s = kubeClients(kubeconfigPath);
      const snap = await readSnapshot(k8s);
      const findings = audit(snap);
      const checked = auditedServices(snap).length;
      let verified: Verification[] = [];
      if (values.verify) {
        if (typeof values.kubeconfig === "string")
          throw new UsageError(
            "--verify sends traffic from tph's own clients: use it on a tph cluster (--name)",
          );
        verified = await verifyFindings(await attachOrFail(config, logger), k8s, findings);
      }
      if (values.json) process.stdout.write(`${JSON.stringify({ findings, verified }, null, 1)}\n`);
      else {
        process.stdout.write(renderFindings(findings, checked));
        for (const v of verified)
          process.stdout.write(
            `${v.blackhole ? "BLACKHOLE" : "served   "} ${v.service} from ${v.path}: ${v.outcomes.join(", ")}  [${v.rule}]\n`,
          );
      }
      return atOrAbove(findings, failOn).length > 0 ? 1 : 0;
    },
  },
  doctor: {
    summary:
      "check what the providers need (root, Go, iproute2 / Docker, kind, kubectl) and say how to fix a miss",
    usage: "tph doctor [--provider local|kind]",
    options: { ...common },
    async run(config, values) {
      const results = await doctor(
        typeof values.provider === "string" ? [config.provider] : ["local", "kind"],
      );
      for (const r of results) {
        process.stdout.write(
          `${r.ok ? "ok  " : "MISS"}  ${r.provider.padEnd(6)} ${r.check.padEnd(40)} ${r.detail}\n`,
        );
        if (!r.ok && r.advice) process.stdout.write(`      ${"".padEnd(6)} ${"".padEnd(40)} → ${r.advice}\n`);
      }
      return results.every((r) => r.ok) ? 0 : 1;
    },
  },
  nodes: {
    summary: "list a running cluster's nodes: name, IP, zone, Ready",
    usage: "tph nodes [--name NAME]",
    options: { ...common },
    async run(config, _values, logger) {
      const cluster = await attachOrFail(config, logger);
      const { core } = kubeClients(cluster.kubeconfigPath);
      const live = new Map((await core.listNode()).items.map((n) => [n.metadata?.name, n]));
      process.stdout.write(
        `${"NAME".padEnd(20)} ${"INTERNAL-IP".padEnd(15)} ${"ZONE".padEnd(12)} ${"READY".padEnd(8)} POD-CIDR\n`,
      );
      for (const node of await cluster.nodes()) {
        const n = live.get(node.name);
        const ready = n?.status?.conditions?.find((c) => c.type === "Ready")?.status ?? "missing";
        process.stdout.write(
          `${node.name.padEnd(20)} ${node.internalIP.padEnd(15)} ${(node.zone ?? "-").padEnd(12)} ${ready.padEnd(8)} ${n?.spec?.podCIDR ?? "-"}\n`,
        );
      }
      return 0;
    },
  },
  client: {
    summary: "run a command as the external client (outside every node, with the client's source IP)",
    usage:
      "tph client [--name NAME] -- <command> [args...]    e.g. tph client -- curl -s http://10.250.0.11:30080/clientip",
    options: { ...common },
    positionals: true,
    async run(config, _values, logger, positionals) {
      if (positionals.length === 0) {
        throw new UsageError(
          "tph client needs a command after --",
          "e.g. tph client -- curl -s http://NODE_IP:NODE_PORT/",
        );
      }
      const cluster = await attachOrFail(config, logger);
      if (!cluster.runExternal) throw new TphError(`provider ${cluster.provider} has no external client`);
      const r = await cluster.runExternal(positionals);
      process.stdout.write(r.stdout);
      process.stderr.write(r.stderr);
      return r.exitCode;
    },
  },
  down: {
    summary: "delete a cluster and everything it created",
    usage: "tph down [--name NAME]",
    options: { ...common },
    async run(config, _values, logger) {
      const provider = getProvider(config.provider);
      const cluster = await provider.attach(config, logger);
      if (cluster) {
        await cluster.delete();
      } else {
        // Half-built or crashed: gc knows how to remove it by name.
        const removed = await provider.gc(config, { logger, all: true });
        const ours = removed.filter((r) => r.startsWith(`cluster ${config.clusterName} `));
        if (ours.length === 0) logger.info(`no cluster named ${config.clusterName}`);
      }
      return 0;
    },
  },
  status: {
    summary: "show whether a cluster's components are running",
    usage: "tph status [--name NAME]",
    options: { ...common },
    async run(config, _values, logger) {
      const cluster = await getProvider(config.provider).attach(config, logger);
      if (!cluster) {
        process.stdout.write(`cluster ${config.clusterName}: not running\n`);
        return 1;
      }
      const rows = await cluster.status();
      process.stdout.write(`cluster ${cluster.name} (${cluster.provider}) ${cluster.server}\n`);
      for (const [k, v] of Object.entries(cluster.versions)) process.stdout.write(`  ${k} ${v}\n`);
      for (const r of rows) {
        process.stdout.write(
          `  ${r.running ? "running" : "STOPPED"}  ${r.component.padEnd(24)} ${r.where.padEnd(16)} ${r.detail ?? ""}\n`,
        );
      }
      return rows.every((r) => r.running) ? 0 : 1;
    },
  },
  kubeconfig: {
    summary: "print the kubeconfig path of a running cluster",
    usage: 'tph kubeconfig [--name NAME]    e.g. kubectl --kubeconfig "$(tph kubeconfig)" get nodes',
    options: { ...common },
    async run(config, _values, logger) {
      const cluster = await attachOrFail(config, logger);
      process.stdout.write(`${cluster.kubeconfigPath}\n`);
      return 0;
    },
  },
  gc: {
    summary: "remove what killed runs left behind (processes, namespaces, links, files)",
    usage: "tph gc [--all]",
    options: { ...common, all: { type: "boolean", help: "also remove clusters that are still running" } },
    async run(config, values, logger) {
      const removed = await getProvider(config.provider).gc(config, { logger, all: values.all === true });
      for (const r of removed) process.stdout.write(`removed ${r}\n`);
      if (removed.length === 0) process.stdout.write("nothing to remove\n");
      return 0;
    },
  },
  binaries: {
    summary: "build (or reuse) the upstream binaries the local provider runs",
    usage: "tph binaries [--rebuild] [--all]",
    options: {
      ...common,
      rebuild: { type: "boolean", help: "rebuild even when cached" },
      all: {
        type: "boolean",
        help: "also the on-demand ones (the previous release's kube-proxy, for the kube-proxy roll)",
      },
    },
    async run(config, values, logger) {
      const rebuild = values.rebuild === true;
      const set = await ensureBinaries(config, logger, { rebuild });
      const paths: Record<string, string> = { ...set.paths };
      if (values.all === true)
        paths["kube-proxy-previous"] = (
          await ensureExtraBinary(config, "kube-proxy-previous", logger, { rebuild })
        ).path;
      for (const [name, path] of Object.entries(paths)) process.stdout.write(`${name.padEnd(24)} ${path}\n`);
      return 0;
    },
  },
};

async function attachOrFail(config: HarnessConfig, logger: Logger) {
  const cluster = await getProvider(config.provider).attach(config, logger);
  if (!cluster)
    throw new TphError(`no running cluster named ${config.clusterName}`, { hint: "start one with `tph up`" });
  return cluster;
}

function help(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return [
    "tph: end-to-end tests for Kubernetes Service traffic policies",
    "",
    "usage: tph <command> [options]",
    "",
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    "",
    "Run `tph <command> --help` for a command's options.",
  ].join("\n");
}

function commandHelp(name: string, c: Command): string {
  const flags = Object.entries(c.options).map(([flag, o]) => {
    const left = `${o.short ? `-${o.short}, ` : "    "}--${flag}${o.type === "string" ? " VALUE" : ""}`;
    return `  ${left.padEnd(30)} ${o.help}`;
  });
  return [`tph ${name}: ${c.summary}`, "", `usage: ${c.usage}`, "", "options:", ...flags].join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(`${help()}\n`);
    return name ? 0 : 2;
  }
  const command = commands[name];
  if (!command) throw new UsageError(`unknown command "${name}"`, `run \`tph --help\` for the list`);
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    const options = Object.fromEntries(
      Object.entries(command.options).map(([k, o]) => [
        k,
        o.short ? { type: o.type, short: o.short } : { type: o.type },
      ]),
    );
    ({ values, positionals } = parseArgs({
      args: rest,
      options,
      allowPositionals: command.positionals === true,
      strict: true,
    }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err), `run \`tph ${name} --help\``);
  }
  if (values.help) {
    process.stdout.write(`${commandHelp(name, command)}\n`);
    return 0;
  }
  const overrides: ConfigOverrides = { cluster: {} };
  if (typeof values.name === "string") overrides.clusterName = values.name;
  if (typeof values.provider === "string") overrides.provider = parseProvider(values.provider);
  const target: NonNullable<ConfigOverrides["target"]> = {};
  if (typeof values.kubeconfig === "string") target.kubeconfig = values.kubeconfig;
  if (typeof values.context === "string") target.context = values.context;
  if (values["allow-disruption"] === true) target.allowDisruption = true;
  if (typeof values["client-ip"] === "string") target.clientIP = values["client-ip"];
  overrides.target = target;
  if (values.verbose) overrides.logLevel = "verbose";
  if (values.quiet) overrides.logLevel = "quiet";
  if (typeof values["node-subnet"] === "string")
    overrides.cluster = { ...overrides.cluster, nodeSubnet: values["node-subnet"] };
  if (typeof values["pod-subnet"] === "string")
    overrides.cluster = { ...overrides.cluster, podSubnet: values["pod-subnet"] };
  if (typeof values["service-subnet"] === "string") {
    overrides.cluster = { ...overrides.cluster, serviceSubnet: values["service-subnet"] };
  }
  if (typeof values.config === "string") {
    const file = values.config;
    const text = await readFile(file, "utf8").catch((err: unknown) => {
      throw new UsageError(`cannot read cluster file ${file}: ${err instanceof Error ? err.message : err}`);
    });
    overrides.cluster = { ...parseClusterFile(text, file), ...overrides.cluster };
  }
  if (typeof values.nodes === "string")
    overrides.cluster = { ...overrides.cluster, nodes: nodeCount(values.nodes) };
  // tph compare takes "A,B" for these: it reads them itself.
  const sides = name === "compare";
  if (typeof values["proxy-mode"] === "string" && !sides) {
    overrides.cluster = { ...overrides.cluster, proxyMode: parseProxyMode(values["proxy-mode"]) };
  }
  if (typeof values["metallb-version"] === "string")
    overrides.cluster = {
      ...overrides.cluster,
      metallbVersion: parseMetallbVersion(values["metallb-version"]),
    };
  if (typeof values["kube-proxy-config"] === "string" && !sides) {
    const patch = readKubeProxyConfigFile(values["kube-proxy-config"]);
    if (patch) overrides.cluster = { ...overrides.cluster, kubeProxyConfig: patch };
  }
  if (typeof values["kube-proxy-version"] === "string" && !sides) {
    overrides.cluster = {
      ...overrides.cluster,
      kubeProxyVersion: parseKubernetesVersion(values["kube-proxy-version"], "--kube-proxy-version"),
    };
  }
  if (typeof values["kubernetes-version"] === "string")
    overrides.cluster = {
      ...overrides.cluster,
      kubernetesVersion: parseKubernetesVersion(values["kubernetes-version"], "--kubernetes-version"),
    };
  if (typeof values.cni === "string")
    overrides.cluster = { ...overrides.cluster, cni: parseCni(values.cni, "--cni") };
  if (values["kube-proxy-replacement"] === true)
    overrides.cluster = { ...overrides.cluster, kubeProxyReplacement: true };
  overrides.kind = {
    ...(typeof values["node-image"] === "string" && { nodeImage: values["node-image"] }),
    ...(values["disable-cni"] === true && { disableDefaultCNI: true }),
  };
  const config = loadConfig(overrides);
  return command.run(config, values, createLogger(config.logLevel), positionals);
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (err: unknown) => {
      process.stderr.write(`${describeError(err)}\n`);
      if (!(err instanceof TphError) && err instanceof Error && err.stack)
        process.stderr.write(`${err.stack}\n`);
      process.exitCode = err instanceof TphError ? err.exitCode : 1;
    },
  );
}

function splitList(value: string | boolean | undefined): string[] {
  return typeof value === "string"
    ? value
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
}
