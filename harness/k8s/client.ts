import { AppsV1Api, CoreV1Api, KubeConfig, VersionApi } from "@kubernetes/client-node";

/** Typed API clients for one cluster, built from a kubeconfig file. */
export interface KubeClients {
  kubeconfig: KubeConfig;
  core: CoreV1Api;
  apps: AppsV1Api;
  version: VersionApi;
}

export function kubeClients(kubeconfigPath: string): KubeClients {
  const kubeconfig = new KubeConfig();
  kubeconfig.loadFromFile(kubeconfigPath);
  return {
    kubeconfig,
    core: kubeconfig.makeApiClient(CoreV1Api),
    apps: kubeconfig.makeApiClient(AppsV1Api),
    version: kubeconfig.makeApiClient(VersionApi),
  };
}

/** The server's gitVersion as reported by /version. */
export async function serverVersion(clients: KubeClients): Promise<string> {
  return (await clients.version.getCode()).gitVersion;
}

/** The HTTP status of an API error from @kubernetes/client-node, if it is one. */
export function apiStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown }).code;
  return typeof code === "number" ? code : undefined;
}

/** A one-line description of an API error: "403 Forbidden: nodes is forbidden: ..." instead of the raw dump. */
export function apiErrorMessage(err: unknown): string {
  const code = apiStatus(err);
  if (code === undefined) return err instanceof Error ? err.message : String(err);
  const body = (err as { body?: unknown }).body;
  try {
    const status = (typeof body === "string" ? JSON.parse(body) : body) as {
      message?: string;
      reason?: string;
    };
    return `${code} ${status.reason ?? ""}: ${status.message ?? ""}`.trim();
  } catch {
    return `${code}: ${String(body).slice(0, 300)}`;
  }
}
