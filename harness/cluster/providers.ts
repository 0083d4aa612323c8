import type { ProviderName } from "../core/config.ts";
import { kindProvider } from "./kind/provider.ts";
import { kubeconfigProvider } from "./kubeconfig/provider.ts";
import { localProvider } from "./local/provider.ts";
import type { ClusterProvider } from "./provider.ts";

/** Looks a provider up by name; the one place that knows which providers exist. */
export function getProvider(name: ProviderName): ClusterProvider {
  switch (name) {
    case "local":
      return localProvider;
    case "kind":
      return kindProvider;
    case "kubeconfig":
      return kubeconfigProvider;
  }
}
