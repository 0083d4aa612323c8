/** OutRateLimitHost + OutRateLimitGlobal from /proc/net/snmp's Icmp lines (names line, values line). */
export function icmpRateLimitedCount(snmp: string): number {
  const [names, values] = snmp.split("\n").filter((l) => l.startsWith("Icmp:"));
  if (!names || !values) return 0;
  const keys = names.split(/\s+/);
  const nums = values.split(/\s+/);
  let total = 0;
  for (const k of ["OutRateLimitHost", "OutRateLimitGlobal"]) {
    const i = keys.indexOf(k);
    if (i > 0) total += Number(nums[i] ?? 0);
  }
  return total;
}
