import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { TphError } from "../../../core/errors.ts";
import { CommandError, run } from "../../../core/exec.ts";

/**
 * A container runtime's half of the CNI specification (containernetworking/cni SPEC.md, version 1.0):
 * the node agent attaches each pod's network namespace by running real CNI plugins, as containerd
 * does for a kubelet. A network configuration list runs in order for ADD and CHECK, each plugin given
 * the previous one's result as `prevResult`, and in reverse for DEL with the cached ADD result; the
 * configuration an ADD used is kept with its result, since DEL and CHECK must see the same one.
 */

/** A network configuration list (what a file in /etc/cni/net.d holds). */
export interface NetworkConfigList {
  cniVersion: string;
  name: string;
  plugins: PluginConfig[];
}

export interface PluginConfig {
  type: string;
  /** Runtime data the plugin takes (SPEC "Deriving runtimeConfig"): only those it names are passed. */
  capabilities?: Record<string, boolean>;
  [key: string]: unknown;
}

/** What a plugin returns from ADD (the parts the agent reads). */
export interface CniResult {
  cniVersion: string;
  interfaces?: { name: string; mac?: string; sandbox?: string }[];
  ips?: { address: string; gateway?: string; interface?: number }[];
  routes?: { dst: string; gw?: string }[];
  [key: string]: unknown;
}

/** One attachment of a network to a container: the key of every cached result. */
export interface Attachment {
  containerId: string;
  /** Path of the network namespace (`/run/netns/NAME`); empty on a DEL after the namespace is gone. */
  netns: string;
  ifName: string;
  /** CNI_ARGS, e.g. K8S_POD_NAMESPACE and K8S_POD_NAME. */
  args: Record<string, string>;
  /** runtimeConfig values by capability (portMappings, ...), passed to plugins that declare it. */
  capabilityArgs?: Record<string, unknown>;
}

export interface CniRuntime {
  /** CNI_PATH: where the plugin binaries are, each named by its type. */
  binDir: string;
  /** Where the ADD results are kept for DEL and CHECK (per node: several nodes share this machine). */
  cacheDir: string;
  timeoutMs?: number;
}

interface CacheEntry {
  network: NetworkConfigList;
  attachment: Attachment;
  result: CniResult;
}

/** A plugin's error: its CNI error code and message (SPEC "Error"), with the command that gave it. */
export class CniError extends TphError {
  readonly code: number | undefined;
  constructor(message: string, code: number | undefined, cause?: unknown) {
    super(message, cause === undefined ? {} : { cause });
    this.name = "CniError";
    this.code = code;
  }
}

/** ADD: attaches the network and caches the result. On failure the partial attachment is deleted. */
export async function cniAdd(
  runtime: CniRuntime,
  network: NetworkConfigList,
  a: Attachment,
): Promise<CniResult> {
  let prev: CniResult | undefined;
  try {
    for (const plugin of network.plugins) prev = await invoke(runtime, "ADD", network, plugin, a, prev);
  } catch (err) {
    // SPEC: a runtime calls DEL after a failed ADD so that plugins release what they took.
    await deleteAll(runtime, network, a, undefined).catch(() => undefined);
    throw err;
  }
  const result = prev as CniResult;
  await mkdir(runtime.cacheDir, { recursive: true });
  const entry: CacheEntry = { network, attachment: a, result };
  await writeFile(cachePath(runtime, network.name, a), JSON.stringify(entry, null, 2));
  return result;
}

/** CHECK: every plugin verifies the attachment is still as ADD left it; throws CniError if not. */
export async function cniCheck(runtime: CniRuntime, networkName: string, a: Attachment): Promise<void> {
  const entry = await readCache(runtime, networkName, a);
  if (!entry)
    throw new CniError(`CNI CHECK ${networkName} ${a.containerId}: no ADD result cached`, undefined);
  for (const plugin of entry.network.plugins)
    await invoke(
      runtime,
      "CHECK",
      entry.network,
      plugin,
      { ...entry.attachment, netns: a.netns },
      entry.result,
    );
}

/**
 * DEL: detaches with the configuration and result ADD cached, in reverse order, then forgets them.
 * With no cached ADD (it never completed) `network` is used, without prevResult.
 */
export async function cniDel(runtime: CniRuntime, network: NetworkConfigList, a: Attachment): Promise<void> {
  const entry = await readCache(runtime, network.name, a);
  await deleteAll(
    runtime,
    entry?.network ?? network,
    { ...(entry?.attachment ?? a), netns: a.netns },
    entry?.result,
  );
  await rm(cachePath(runtime, network.name, a), { force: true });
}

/** The attachments cached for `networkName`: what a restarted runtime must DEL if their pods are gone. */
export async function cachedAttachments(runtime: CniRuntime, networkName: string): Promise<Attachment[]> {
  const names = await readdir(runtime.cacheDir).catch(() => [] as string[]);
  const out: Attachment[] = [];
  for (const name of names) {
    if (!name.startsWith(`${networkName}-`)) continue;
    try {
      const entry = JSON.parse(await readFile(join(runtime.cacheDir, name), "utf8")) as CacheEntry;
      if (entry.network.name === networkName) out.push(entry.attachment);
    } catch {}
  }
  return out;
}

/** The first address of a result, without its prefix length: the pod IP. */
export function firstAddress(result: CniResult): string {
  const address = result.ips?.[0]?.address;
  if (!address) throw new CniError(`CNI result has no IP address: ${JSON.stringify(result)}`, undefined);
  return address.split("/")[0] as string;
}

async function deleteAll(
  runtime: CniRuntime,
  network: NetworkConfigList,
  a: Attachment,
  prev: CniResult | undefined,
): Promise<void> {
  // Every plugin gets its DEL even when one before it failed; the first error is reported.
  let first: unknown;
  for (const plugin of [...network.plugins].reverse()) {
    try {
      await invoke(runtime, "DEL", network, plugin, a, prev);
    } catch (err) {
      first ??= err;
    }
  }
  if (first !== undefined) throw first;
}

async function invoke(
  runtime: CniRuntime,
  command: "ADD" | "DEL" | "CHECK",
  network: NetworkConfigList,
  plugin: PluginConfig,
  a: Attachment,
  prev: CniResult | undefined,
): Promise<CniResult> {
  const config = pluginConfig(network, plugin, a, prev);
  const argv = [join(runtime.binDir, plugin.type)];
  const env = {
    CNI_COMMAND: command,
    CNI_CONTAINERID: a.containerId,
    CNI_NETNS: a.netns,
    CNI_IFNAME: a.ifName,
    CNI_ARGS: Object.entries(a.args)
      .map(([k, v]) => `${k}=${v}`)
      .join(";"),
    CNI_PATH: runtime.binDir,
  };
  let stdout: string;
  try {
    ({ stdout } = await run(argv, {
      env,
      input: JSON.stringify(config),
      timeoutMs: runtime.timeoutMs ?? 30_000,
    }));
  } catch (err) {
    // SPEC: on failure the plugin prints an error object {code, msg, details} on stdout.
    const out = err instanceof CommandError ? err.stdoutTail : "";
    let parsed: { code?: number; msg?: string; details?: string } = {};
    try {
      parsed = JSON.parse(out);
    } catch {}
    const what = parsed.msg ? `${parsed.msg}${parsed.details ? ` (${parsed.details})` : ""}` : String(err);
    throw new CniError(
      `CNI ${command} of ${plugin.type} for ${a.containerId} (${a.ifName}) failed: ${what}`,
      parsed.code,
      err,
    );
  }
  if (command !== "ADD") return prev as CniResult;
  try {
    return JSON.parse(stdout) as CniResult;
  } catch (err) {
    throw new CniError(
      `CNI ADD of ${plugin.type} printed no result: ${stdout.slice(0, 200)}`,
      undefined,
      err,
    );
  }
}

/** The configuration one plugin of a list reads on stdin (SPEC "Deriving execution configuration"). */
export function pluginConfig(
  network: NetworkConfigList,
  plugin: PluginConfig,
  a: Attachment,
  prev: CniResult | undefined,
): Record<string, unknown> {
  const { capabilities, ...rest } = plugin;
  const runtimeConfig: Record<string, unknown> = {};
  for (const [cap, on] of Object.entries(capabilities ?? {}))
    if (on && a.capabilityArgs?.[cap] !== undefined) runtimeConfig[cap] = a.capabilityArgs[cap];
  return {
    ...rest,
    ...(capabilities && { capabilities }),
    cniVersion: network.cniVersion,
    name: network.name,
    ...(Object.keys(runtimeConfig).length > 0 && { runtimeConfig }),
    ...(prev && { prevResult: prev }),
  };
}

function cachePath(runtime: CniRuntime, networkName: string, a: Attachment): string {
  // libcni's layout: <network>-<container id>-<interface>.
  return join(runtime.cacheDir, `${networkName}-${a.containerId}-${a.ifName}`);
}

async function readCache(
  runtime: CniRuntime,
  networkName: string,
  a: Attachment,
): Promise<CacheEntry | undefined> {
  try {
    return JSON.parse(await readFile(cachePath(runtime, networkName, a), "utf8")) as CacheEntry;
  } catch {
    return undefined;
  }
}
