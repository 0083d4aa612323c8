import type { V1Container } from "@kubernetes/client-node";
import type { ImageMapping } from "./config.ts";

/**
 * Maps a container to a local program. No images are pulled: the local provider runs the real program
 * an image would contain (agnhost → the agnhost binary built from the pinned Kubernetes module).
 *
 * Container semantics follow the image's: with `command` set, command[0] names the image's program
 * (any path ending in the mapped program's name, e.g. /agnhost) and is replaced by the local binary;
 * without `command`, the binary runs with `entrypointArgs` and then `args`.
 */
export type ResolvedProgram = { ok: true; argv: string[] } | { ok: false; reason: string; message: string };

export function resolveProgram(container: V1Container, images: ImageMapping[]): ResolvedProgram {
  const image = container.image ?? "";
  const repository = image.replace(/@sha256:[0-9a-f]+$/, "").replace(/:[^/:]+$/, "");
  const mapping = images.find(
    (m) => repository === m.repositorySuffix || repository.endsWith(`/${m.repositorySuffix}`),
  );
  if (!mapping) {
    return {
      ok: false,
      reason: "ImageNotMapped",
      message: `image "${image}" has no local program on the local provider (mapped: ${images.map((m) => m.repositorySuffix).join(", ")})`,
    };
  }
  const args = container.args ?? [];
  const file = (arg: string) => mapping.files?.[arg] ?? arg;
  if (container.command && container.command.length > 0) {
    const [program, ...rest] = container.command;
    const name = mapping.binary.split("/").pop() ?? "";
    if (program?.split("/").pop() !== name) {
      return {
        ok: false,
        reason: "CommandNotMapped",
        message: `command "${program}" is not the program of image "${image}" (${name}); the local provider runs only that program`,
      };
    }
    return { ok: true, argv: [mapping.binary, ...[...rest, ...args].map(file)] };
  }
  return { ok: true, argv: [mapping.binary, ...[...(mapping.entrypointArgs ?? []), ...args].map(file)] };
}
