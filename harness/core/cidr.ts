import { UsageError } from "./errors.ts";

/** An IPv4 prefix, e.g. 10.250.0.0/24. Only IPv4: the local provider is single-stack. */
export interface Cidr {
  text: string;
  network: number;
  prefix: number;
}

export function parseCidr(text: string): Cidr {
  const match = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(text.trim());
  if (!match) throw new UsageError(`"${text}" is not an IPv4 CIDR`, "write it like 10.250.0.0/24");
  const octets = match.slice(1, 5).map(Number);
  const prefix = Number(match[5]);
  if (octets.some((o) => o > 255) || prefix > 32) throw new UsageError(`"${text}" is not a valid IPv4 CIDR`);
  const address = octets.reduce((acc, o) => acc * 256 + o, 0);
  const network = address - (address % 2 ** (32 - prefix));
  if (network !== address) {
    throw new UsageError(`"${text}" has host bits set`, `did you mean ${formatIp(network)}/${prefix}?`);
  }
  return { text: `${formatIp(network)}/${prefix}`, network, prefix };
}

export function parseIp(text: string): number {
  return parseCidr(`${text}/32`).network;
}

export function formatIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join(".");
}

export function size(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

/** The address `index` places into the prefix (0 is the network address). */
export function nthAddress(c: Cidr, index: number): string {
  if (index < 0 || index >= size(c)) throw new UsageError(`address #${index} does not fit in ${c.text}`);
  return formatIp(c.network + index);
}

export function contains(c: Cidr, ip: number): boolean {
  return ip >= c.network && ip < c.network + size(c);
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.network < b.network + size(b) && b.network < a.network + size(a);
}
