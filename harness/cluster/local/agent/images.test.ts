import { describe, expect, it } from "vitest";
import { resolveProgram } from "./images.ts";

const images = [{ repositorySuffix: "agnhost", binary: "/cache/bin/agnhost" }];

describe("resolveProgram", () => {
  it("runs agnhost with the container's args when no command is given", () => {
    expect(
      resolveProgram(
        {
          name: "c",
          image: "registry.k8s.io/e2e-test-images/agnhost:2.53",
          args: ["netexec", "--http-port=8080"],
        },
        images,
      ),
    ).toEqual({ ok: true, argv: ["/cache/bin/agnhost", "netexec", "--http-port=8080"] });
  });

  it("replaces the image's own program in `command`", () => {
    expect(
      resolveProgram(
        {
          name: "c",
          image: "agnhost@sha256:abcd",
          command: ["/agnhost", "netexec"],
          args: ["--udp-port=-1"],
        },
        images,
      ),
    ).toEqual({
      ok: true,
      argv: ["/cache/bin/agnhost", "netexec", "--udp-port=-1"],
    });
  });

  it("refuses an image with no mapping, with a reason for the pod status", () => {
    const r = resolveProgram({ name: "c", image: "nginx:1.27" }, images);
    expect(r.ok).toBe(false);
    expect(r).toMatchObject({
      reason: "ImageNotMapped",
      message: expect.stringContaining('image "nginx:1.27"'),
    });
  });

  it("refuses a command the image does not contain", () => {
    expect(
      resolveProgram({ name: "c", image: "agnhost:2.53", command: ["/bin/sh", "-c", "x"] }, images),
    ).toMatchObject({
      ok: false,
      reason: "CommandNotMapped",
    });
  });

  it("does not match a repository that merely ends in the same letters", () => {
    expect(resolveProgram({ name: "c", image: "example.com/notagnhost:1" }, images).ok).toBe(false);
  });

  it("puts this machine's file where the image's pods would find a mounted one", () => {
    const node = [
      { repositorySuffix: "node", binary: "/usr/bin/node", files: { "/tph/probe.ts": "/repo/probe.ts" } },
    ];
    expect(
      resolveProgram(
        { name: "probe", image: "node:24-alpine", command: ["node", "/tph/probe.ts", "--serve", "8090"] },
        node,
      ),
    ).toEqual({ ok: true, argv: ["/usr/bin/node", "/repo/probe.ts", "--serve", "8090"] });
  });
});
