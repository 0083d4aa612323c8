import { describe, expect, it } from "vitest";
import { icmpRateLimitedCount } from "./snmp.ts";

describe("icmpRateLimitedCount", () => {
  it("adds OutRateLimitHost and OutRateLimitGlobal from /proc/net/snmp", () => {
    const snmp = [
      "Ip: Forwarding DefaultTTL",
      "Ip: 1 64",
      "Icmp: InMsgs InErrors OutMsgs OutRateLimitGlobal OutRateLimitHost",
      "Icmp: 10 0 12 1 4",
      "IcmpMsg: InType3",
      "IcmpMsg: 10",
    ].join("\n");
    expect(icmpRateLimitedCount(snmp)).toBe(5);
    expect(icmpRateLimitedCount("Ip: a\nIp: 1\n")).toBe(0);
  });
});
