import { COMMAND_NEEDS } from "../cluster/local/preflight.ts";
import { parseCidr } from "../core/cidr.ts";
import { run, which } from "../core/exec.ts";

/** One check of `tph doctor`: what was looked at, what was found, and what to do when it is missing. */
export interface DoctorResult {
  provider: string;
  check: string;
  ok: boolean;
  detail: string;
  advice?: string;
}

async function version(argv: string[]): Promise<string | undefined> {
  const r = await run(argv, { allowFailure: true, timeoutMs: 20_000 }).catch(() => undefined);
  return r && r.exitCode === 0 ? (r.stdout.trim().split("\n")[0] ?? "") : undefined;
}

export async function doctor(providers: string[]): Promise<DoctorResult[]> {
  const results: DoctorResult[] = [];
  // An optional check (a tool for the user, not for tph) is never a failure: missing, it only says so.
  const add = (
    provider: string,
    check: string,
    found: string | undefined,
    advice: string,
    optional = false,
  ) =>
    results.push({
      provider,
      check,
      ok: found !== undefined || optional,
      detail: found ?? (optional ? "not found (optional)" : "not found"),
      ...(found === undefined && { advice }),
    });

  if (providers.includes("local")) {
    add(
      "local",
      "running as root",
      process.getuid?.() === 0 ? "uid 0" : undefined,
      "run tph with sudo for --provider local",
    );
    add(
      "local",
      "go (builds the upstream binaries)",
      await version(["go", "version"]),
      "install Go >= 1.26, or set TPH_GO",
    );
    for (const n of COMMAND_NEEDS) {
      add(
        "local",
        `${n.command} (${n.why})`,
        (await which(n.command)) ? "found" : undefined,
        `apt-get install ${n.pkg}`,
      );
    }
  }
  if (providers.includes("kind")) {
    add(
      "kind",
      "docker client",
      await version(["docker", "--version"]),
      "install Docker: https://docs.docker.com/engine/install/",
    );
    add(
      "kind",
      "docker daemon reachable",
      await version(["docker", "version", "--format", "{{.Server.Version}}"]),
      "start Docker; check `docker version` and your permissions on the docker socket",
    );
    add(
      "kind",
      "kind",
      await version(["kind", "version"]),
      "go install sigs.k8s.io/kind@latest (https://kind.sigs.k8s.io/docs/user/quick-start/)",
    );
    add(
      "kind",
      "kubectl (for you; tph does not need it)",
      await version(["kubectl", "version", "--client"]),
      "https://kubernetes.io/docs/tasks/tools/",
      true,
    );
    // The external client lives on the kind network; the harness itself reaches LoadBalancer IPs only
    // through it, but a user curling them by hand needs a route from the host (none on Docker Desktop).
    const inspect = await run(
      ["docker", "network", "inspect", "kind", "--format", "{{range .IPAM.Config}}{{.Subnet}} {{end}}"],
      {
        allowFailure: true,
      },
    ).catch(() => undefined);
    const subnet = inspect?.stdout.split(/\s+/).find((s) => /^\d+\.\d+\.\d+\.\d+\/\d+$/.test(s));
    let route: string | undefined;
    if (subnet) {
      const first = parseCidr(subnet).text.replace(/\.0\/\d+$/, ".1");
      route = (
        await run(["ip", "route", "get", first], { allowFailure: true }).catch(() => undefined)
      )?.stdout
        .trim()
        .split("\n")[0];
    }
    add(
      "kind",
      "kind network reachable from the host",
      subnet && route ? `${subnet}: ${route}` : undefined,
      subnet
        ? "the host has no route to the kind network (Docker Desktop?): use `tph client` to reach it"
        : "no `kind` docker network yet: it appears with the first kind cluster",
    );
  }
  return results;
}
