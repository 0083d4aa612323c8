import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { checkScenarioText } from "./load.ts";
import { newScenario } from "./new.ts";

describe("tph scenario new", () => {
  it("writes a valid scenario from a user's Service and Deployment, with stand-in backends", async () => {
    const dir = await mkdtemp(join(tmpdir(), "tph-new-"));
    await writeFile(
      join(dir, "svc.yaml"),
      "apiVersion: v1\nkind: Service\nmetadata: {name: shop, namespace: prod}\nspec:\n  type: LoadBalancer\n  externalTrafficPolicy: Local\n  selector: {app: shop}\n  ports: [{port: 443, targetPort: 8443}]\n",
    );
    await writeFile(
      join(dir, "deploy.yaml"),
      "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: shop, namespace: prod, uid: abc}\nspec:\n  replicas: 1\n  selector: {matchLabels: {app: shop}}\n  template:\n    metadata: {labels: {app: shop}}\n    spec:\n      containers:\n        - name: app\n          image: example.com/shop:1.2\n          readinessProbe: {httpGet: {path: /health, port: 9000}, periodSeconds: 2}\n",
    );
    const text = await newScenario([join(dir, "svc.yaml"), join(dir, "deploy.yaml")]);
    const { scenario, errors } = checkScenarioText(text, join(dir, "new.yaml"));
    expect(errors).toEqual([]);
    expect(scenario?.traffic.map((t) => t.name)).toContain("external->lb(shop)");
    expect(scenario?.steps.map((s) => s.kind)).toEqual(["rolloutRestart", "drain"]);
    // eTP Local: the policy promises the client's address on the external paths.
    expect(scenario?.expect.map((e) => e.verdict)).toEqual(["NoDrops", "SourceIpPreserved"]);
    const deploy = scenario?.objects.find((o) => o.kind === "Deployment") as {
      metadata: Record<string, unknown>;
      spec: {
        template: { spec: { containers: { image: string; args: string[]; readinessProbe: unknown }[] } };
      };
    };
    expect(deploy.metadata.namespace).toBeUndefined();
    expect(deploy.metadata.uid).toBeUndefined();
    const [c] = deploy.spec.template.spec.containers;
    expect(c?.image).toMatch(/agnhost/);
    expect(c?.args).toContain("--http-port=8443");
    expect(c?.readinessProbe).toEqual({ periodSeconds: 2, httpGet: { path: "/readyz", port: 8443 } });
  });
});
