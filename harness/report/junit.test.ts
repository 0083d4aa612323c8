import { describe, expect, it } from "vitest";
import { escapeXml, junitXml } from "./junit.ts";
import type { Row } from "./verdicts-table.ts";

describe("escapeXml", () => {
  it("escapes the five XML specials", () => {
    expect(escapeXml(`a & b < c > d "e" 'f'`)).toBe("a &amp; b &lt; c &gt; d &quot;e&quot; &apos;f&apos;");
    expect(escapeXml("&amp;")).toBe("&amp;amp;");
  });

  it("drops characters XML 1.0 forbids and keeps tab, newline and non-ASCII", () => {
    expect(escapeXml("\u001b[31mred\u001b[39m\u0000\u0008\uFFFE")).toBe("[31mred[39m");
    expect(escapeXml("a\tb\nc\rd › é 🙂")).toBe("a\tb\nc\rd › é 🙂");
    expect(escapeXml("lone \uD800 surrogate")).toBe("lone  surrogate");
  });
});

describe("junitXml", () => {
  const rows: Row[] = [
    { suite: "etp", test: "etp › local <ok>", state: "pass", ms: 1_500 },
    {
      suite: "etp",
      test: "etp › cluster",
      state: "fail",
      ms: 2_000,
      reason: 'expected "a" & got <b>',
      details: 'expected "a" & got <b>\n    at etp.e2e.ts:1:1',
    },
    { suite: "etp", test: "etp › needs 3", state: "skip", ms: 0, reason: "needs 3 worker nodes" },
    {
      suite: "lb",
      test: "lb › loadbalancer",
      state: "error",
      ms: 61_000,
      reason: "cluster bring-up failed",
      details: "Error: cluster bring-up failed\n    at up.ts:9:9",
      phase: "setup",
      notRun: ["lb › loadbalancer › a", "lb › loadbalancer › b"],
    },
  ];

  it("one testsuite per suite file with its counts", () => {
    const xml = junitXml(rows);
    expect(xml).toMatch(
      /^<\?xml version="1\.0" encoding="UTF-8"\?>\n<testsuites name="tph run" tests="4" failures="1" errors="1" skipped="1" time="64\.500">/,
    );
    expect(xml).toContain(
      '<testsuite name="etp" tests="3" failures="1" errors="0" skipped="1" time="3.500">',
    );
    expect(xml).toContain(
      '<testsuite name="lb" tests="1" failures="0" errors="1" skipped="0" time="61.000">',
    );
    expect(xml).toContain('<testcase classname="etp" name="etp › local &lt;ok&gt;" time="1.500"/>');
    expect(xml).toContain(
      '<failure message="expected &quot;a&quot; &amp; got &lt;b&gt;">expected &quot;a&quot; &amp; got &lt;b&gt;\n    at etp.e2e.ts:1:1</failure>',
    );
    expect(xml).toContain('<skipped message="needs 3 worker nodes"/>');
    expect(xml.trimEnd().endsWith("</testsuites>")).toBe(true);
  });

  it("an error row is a testcase of its own, named for the phase that failed, listing the tests it kept from running", () => {
    const xml = junitXml(rows);
    expect(xml).toContain('<testcase classname="lb" name="setup: lb › loadbalancer" time="61.000">');
    expect(xml).toContain(
      '<error message="setup failed, 2 tests not run: cluster bring-up failed">Error: cluster bring-up failed\n    at up.ts:9:9\n\nnot run:\n  lb › loadbalancer › a\n  lb › loadbalancer › b</error>',
    );
  });

  it("no rows is an empty testsuites", () => {
    expect(junitXml([])).toBe(
      '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="tph run" tests="0" failures="0" errors="0" skipped="0" time="0.000">\n</testsuites>\n',
    );
  });
});
