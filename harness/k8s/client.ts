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
