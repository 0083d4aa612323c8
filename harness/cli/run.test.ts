import { describe, expect, it } from "vitest";
import { UsageError } from "../core/errors.ts";
import { parseRepeat } from "./run.ts";

describe("parseRepeat", () => {
  it("takes a positive integer", () => {
    expect(parseRepeat("1")).toBe(1);
    expect(parseRepeat("3")).toBe(3);
  });

  it.each(["0", "-1", "2.5", "3x", "", "1e3"])("refuses %j with a usage error and a hint", (value) => {
    expect(() => parseRepeat(value)).toThrow(UsageError);
    try {
      parseRepeat(value);
    } catch (err) {
      expect((err as UsageError).hint).toContain("--repeat 3");
      expect((err as UsageError).exitCode).toBe(2);
    }
  });
});
