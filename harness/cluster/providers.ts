import type { ProviderName } from "../core/config.ts";
import { TphError } from "../core/errors.ts";
import { localProvider } from "./local/provider.ts";
import type { ClusterProvider } from "./provider.ts";

/** Looks a provider up by name; the one place that knows which providers exist. */
export function getProvider(name: ProviderName): ClusterProvider {
  switch (name) {
    case "local":
      return localProvider;
    case "kind":
      throw new TphError("the kind provider is not available in this version yet", {
        hint: "use --provider local (Linux, root, Go); kind support is tracked as its own issue",
      });
  }
}
