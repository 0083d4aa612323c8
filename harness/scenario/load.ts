/**
 * Reads a scenario file (docs/scenario-format.md) into a `Scenario`, or refuses it with every error at
 * once, each as `file:line:column: path: what was expected`.
 *
 * Structure is checked against SCENARIO_SCHEMA (schema.ts) by the small interpreter below: one source of
 * truth for editors and for us. What a schema cannot say is checked after it (crossChecks, readObjects):
 * unique names, references to traffic entries, steps and nodes, manifest files that exist and parse.
 *
 * Positions: the file is parsed with `yaml`'s parseDocument and a LineCounter; errors are found on the
 * plain value (doc.toJS()) with a path such as ["traffic", 0, "rate"], and that path is then walked down
 * the document's nodes to the key or the value it names, whose source range gives the offset the
 * LineCounter turns into a line and a column.
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, resolve } from "node:path";
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  parseDocument,
} from "yaml";
import { UsageError } from "../core/errors.ts";
import { type JsonSchema, SCENARIO_SCHEMA } from "./schema.ts";
import type {
  Expectation,
  Scenario,
  ScenarioCluster,
  Step,
  StepAction,
  TrafficSpec,
  VerdictName,
} from "./types.ts";

export interface ScenarioError {
  /** The scenario file, as it was named to the loader. */
  file: string;
  /** 1-based. */
  line: number;
  /** 1-based. */
  column: number;
  /** Where in the scenario, e.g. traffic[1].rate ("" for the file as a whole). */
  path: string;
  message: string;
}

/** A scenario file with errors: the message lists them all, one a line. Exit code 2. */
export class ScenarioFileError extends UsageError {
  readonly errors: ScenarioError[];

  constructor(file: string, errors: ScenarioError[]) {
    const count = errors.length === 1 ? "1 error" : `${errors.length} errors`;
    super(
      `${file} is not a valid scenario (${count}):\n${errors.map(formatScenarioError).join("\n")}`,
      "the format is described in docs/scenario-format.md; editors check files against scenarios/scenario.schema.json",
    );
    this.name = "ScenarioFileError";
    this.errors = errors;
  }
}

/** `file:line:column: path: message` (no path for errors about the file as a whole, e.g. YAML syntax). */
export function formatScenarioError(e: ScenarioError): string {
  return `${e.file}:${e.line}:${e.column}: ${e.path ? `${e.path}: ` : ""}${e.message}`;
}

/** Reads and checks a scenario file; throws ScenarioFileError listing every error. */
export async function loadScenario(file: string): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(
      code === "ENOENT"
        ? `scenario file ${file} does not exist`
        : `cannot read scenario file ${file}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const { scenario, errors } = checkScenarioText(text, file);
  if (!scenario) throw new ScenarioFileError(file, errors);
  return scenario;
}

/**
 * Checks a scenario's text; `file` names it in errors and is where manifest paths are resolved from.
 * Manifest files are read synchronously (they are small, and this keeps the function usable anywhere).
 */
export function checkScenarioText(
  text: string,
  file: string,
): { scenario?: Scenario; errors: ScenarioError[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false });
  const at = (offset: number): { line: number; column: number } => {
    const { line, col } = lineCounter.linePos(offset);
    return { line, column: col };
  };
  // A document with syntax errors is not worth checking further: its structure is a guess.
  if (doc.errors.length > 0)
    return {
      errors: doc.errors.map((e) => ({
        file,
        ...at(e.pos[0]),
        path: "",
        // yaml's own message names its API, which means nothing to the file's author.
        message:
          e.code === "MULTIPLE_DOCS"
            ? "a scenario file holds one YAML document (no --- between two)"
            : e.message,
      })),
    };
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (err) {
    // e.g. too many aliases (yaml's guard against "billion laughs")
    const message = err instanceof Error ? err.message : String(err);
    return { errors: [{ file, line: 1, column: 1, path: "", message }] };
  }

  const issues: Issue[] = [];
  check(value, SCENARIO_SCHEMA, [], issues);
  const absolute = resolve(file);
  let objects: Record<string, unknown>[] = [];
  const raw = asMapping(value);
  if (raw) {
    crossChecks(raw, issues);
    objects = readObjects(raw.objects, dirname(absolute), issues);
  }

  const errors = issues
    .map((i) => ({ file, ...at(offsetOf(doc, i.path, i.at)), path: formatPath(i.path), message: i.message }))
    .sort((a, b) => a.line - b.line || a.column - b.column);
  if (errors.length > 0) return { errors };
  return { scenario: toScenario(value as RawScenario, absolute, objects), errors: [] };
}

// ---------------------------------------------------------------------------------------------------
// The JSON Schema interpreter: the keywords schema.ts uses, and no others.

type Segment = string | number;

/** An error found on the plain value: where (a path, and whether the key or the value), and what. */
interface Issue {
  path: Segment[];
  at: "key" | "value";
  message: string;
}

const KEYWORDS = new Set([
  "$schema",
  "$id",
  "$ref",
  "$defs",
  "title",
  "description",
  "examples",
  "type",
  "properties",
  "required",
  "additionalProperties",
  "enum",
  "const",
  "items",
  "minItems",
  "maxItems",
  "minimum",
  "maximum",
  "exclusiveMinimum",
  "minLength",
  "pattern",
  "oneOf",
  "anyOf",
]);

/** Refuses, at import, a schema using a keyword the interpreter would silently ignore. */
function assertSupported(s: JsonSchema, where: string): void {
  for (const k of Object.keys(s))
    if (!KEYWORDS.has(k)) throw new Error(`${where}: load.ts does not interpret the schema keyword "${k}"`);
  if (s.$ref !== undefined) resolveRef(s);
  for (const [k, sub] of Object.entries(s.properties ?? {})) assertSupported(sub, `${where}.properties.${k}`);
  for (const [k, sub] of Object.entries(s.$defs ?? {})) assertSupported(sub, `${where}.$defs.${k}`);
  if (typeof s.additionalProperties === "object")
    assertSupported(s.additionalProperties, `${where}.additionalProperties`);
  if (s.items) assertSupported(s.items, `${where}.items`);
  for (const [i, sub] of (s.oneOf ?? s.anyOf ?? []).entries()) assertSupported(sub, `${where}.oneOf[${i}]`);
}
assertSupported(SCENARIO_SCHEMA, "SCENARIO_SCHEMA");

function resolveRef(s: JsonSchema): JsonSchema {
  if (s.$ref === undefined) return s;
  const name = s.$ref.startsWith("#/$defs/") ? s.$ref.slice("#/$defs/".length) : undefined;
  const target = name === undefined ? undefined : SCENARIO_SCHEMA.$defs?.[name];
  if (!target) throw new Error(`schema reference ${s.$ref} is not one of #/$defs/...`);
  return target;
}

const TYPE_NAMES: Record<NonNullable<JsonSchema["type"]>, string> = {
  object: "a mapping",
  array: "a list",
  string: "a string",
  number: "a number",
  integer: "an integer",
  boolean: "a boolean",
  null: "an empty value",
};

function hasType(value: unknown, type: NonNullable<JsonSchema["type"]>): boolean {
  switch (type) {
    case "object":
      return asMapping(value) !== undefined;
    case "array":
      return Array.isArray(value);
    case "string":
      return typeof value === "string";
    case "number":
      return typeof value === "number" && Number.isFinite(value);
    case "integer":
      return Number.isInteger(value);
    case "boolean":
      return typeof value === "boolean";
    case "null":
      return value === null;
  }
}

/** What a value is, for "got ...": its kind, and the value itself when short enough to quote. */
function describeValue(value: unknown): string {
  if (value === null || value === undefined) return "an empty value";
  if (typeof value === "string") return `a string (${quote(value)})`;
  if (typeof value === "number") return `a number (${value})`;
  if (typeof value === "boolean") return `a boolean (${value})`;
  return Array.isArray(value) ? "a list" : "a mapping";
}

/** A scalar as written in an error: strings quoted (and cut when long), the rest as they are. */
function quote(value: unknown): string {
  if (typeof value !== "string")
    return typeof value === "object" && value !== null ? describeValue(value) : String(value);
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 37)}...` : value);
}

/** What a schema accepts, for "expected ...". */
function describeSchema(schema: JsonSchema): string[] {
  const s = resolveRef(schema);
  const alternatives = s.oneOf ?? s.anyOf;
  if (alternatives) return alternatives.flatMap(describeSchema);
  if (s.const !== undefined) return [quote(s.const)];
  if (s.enum) return [`one of ${s.enum.map(String).join(", ")}`];
  return [s.type ? TYPE_NAMES[s.type] : "anything"];
}

/** "a", "a or b", "a, b or c". */
function orList(items: string[]): string {
  const unique = [...new Set(items)];
  return unique.length <= 1 ? (unique[0] ?? "") : `${unique.slice(0, -1).join(", ")} or ${unique.at(-1)}`;
}

/** Whether a schema could accept a value of this type (to pick the union alternative to report on). */
function acceptsType(schema: JsonSchema, value: unknown): boolean {
  const s = resolveRef(schema);
  const alternatives = s.oneOf ?? s.anyOf;
  if (alternatives) return alternatives.some((a) => acceptsType(a, value));
  if (s.type) return hasType(value, s.type);
  if (s.const !== undefined) return typeof s.const === typeof value;
  if (s.enum) return s.enum.some((e) => typeof e === typeof value);
  return true;
}

function check(value: unknown, schema: JsonSchema, path: Segment[], out: Issue[]): void {
  const s = resolveRef(schema);
  const issue = (message: string) => out.push({ path, at: "value", message });
  const alternatives = s.oneOf ?? s.anyOf;
  if (alternatives) {
    checkUnion(value, alternatives, s.oneOf ? "oneOf" : "anyOf", path, out);
    return;
  }
  // const and enum only ever hold scalars here, so === compares them.
  if (s.const !== undefined && value !== s.const) {
    issue(`expected ${quote(s.const)}, got ${quote(value ?? null)}`);
    return;
  }
  if (s.enum && !s.enum.includes(value)) {
    const near = typeof value === "string" ? closest(value, s.enum.map(String)) : undefined;
    issue(
      `expected one of ${s.enum.map(String).join(", ")}, got ${quote(value ?? null)}${near ? ` (did you mean "${near}"?)` : ""}`,
    );
    return;
  }
  if (s.type && !hasType(value, s.type)) {
    issue(`expected ${TYPE_NAMES[s.type]}, got ${describeValue(value)}`);
    return;
  }
  if (typeof value === "string") {
    if (s.minLength !== undefined && value.length < s.minLength)
      issue(
        s.minLength === 1 ? "expected a non-empty string" : `expected at least ${s.minLength} characters`,
      );
    else if (s.pattern !== undefined && !new RegExp(s.pattern, "u").test(value)) {
      const examples = s.examples ? ` (e.g. ${s.examples.map(String).join(", ")})` : "";
      issue(`expected a string matching ${s.pattern}${examples}, got ${quote(value)}`);
    }
  }
  if (typeof value === "number") {
    if (s.minimum !== undefined && value < s.minimum) issue(`expected at least ${s.minimum}, got ${value}`);
    if (s.exclusiveMinimum !== undefined && value <= s.exclusiveMinimum)
      issue(`expected more than ${s.exclusiveMinimum}, got ${value}`);
    if (s.maximum !== undefined && value > s.maximum) issue(`expected at most ${s.maximum}, got ${value}`);
  }
  if (Array.isArray(value)) {
    if (s.minItems !== undefined && value.length < s.minItems)
      issue(
        value.length === 0
          ? "expected a non-empty list"
          : `expected at least ${s.minItems} items, got ${value.length}`,
      );
    if (s.maxItems !== undefined && value.length > s.maxItems)
      issue(`expected at most ${s.maxItems} items, got ${value.length}`);
    if (s.items) for (const [i, item] of value.entries()) check(item, s.items, [...path, i], out);
  }
  const mapping = asMapping(value);
  if (mapping) checkMapping(mapping, s, path, out);
}

function checkMapping(value: Record<string, unknown>, s: JsonSchema, path: Segment[], out: Issue[]): void {
  const properties = s.properties ?? {};
  const known = Object.keys(properties);
  // A misspelt required field is reported once, as the unknown field that suggests it.
  const suggested = new Set<string>();
  for (const key of Object.keys(value)) {
    if (Object.hasOwn(properties, key)) continue;
    if (s.additionalProperties === false) {
      const near = closest(key, known);
      if (near) suggested.add(near);
      out.push(unknownField([...path, key], known, near));
    } else if (typeof s.additionalProperties === "object") {
      check(value[key], s.additionalProperties, [...path, key], out);
    }
  }
  for (const key of s.required ?? [])
    if (!Object.hasOwn(value, key) && !suggested.has(key))
      out.push({ path, at: "value", message: `missing required field "${key}"` });
  for (const [key, sub] of Object.entries(properties))
    if (Object.hasOwn(value, key)) check(value[key], sub, [...path, key], out);
}

function unknownField(path: Segment[], known: string[], near: string | undefined): Issue {
  const hint = near ? `did you mean "${near}"? ` : "";
  return { path, at: "key", message: `unknown field (${hint}known: ${known.join(", ")})` };
}

/**
 * A union reports the errors of the one alternative the value was evidently meant for: the only one of
 * its type; or, among mappings, the one whose required key it has (a step's action, a window's
 * before/during/after). Reporting every alternative's errors would bury the one that matters.
 */
function checkUnion(
  value: unknown,
  alternatives: JsonSchema[],
  kind: "oneOf" | "anyOf",
  path: Segment[],
  out: Issue[],
): void {
  const results = alternatives.map((a) => {
    const issues: Issue[] = [];
    check(value, a, path, issues);
    return issues;
  });
  const passing = results.filter((r) => r.length === 0).length;
  if (passing === 1 || (kind === "anyOf" && passing > 1)) return;
  if (passing > 1) {
    // The schema's alternatives overlap: a bug in schema.ts rather than in the file.
    out.push({ path, at: "value", message: "matches more than one alternative of the schema" });
    return;
  }
  const typed = alternatives.flatMap((a, i) => (acceptsType(a, value) ? [i] : []));
  const report = (i: number) => out.push(...(results[i] ?? []));
  if (typed.length === 0) {
    out.push({
      path,
      at: "value",
      message: `expected ${orList(alternatives.flatMap(describeSchema))}, got ${describeValue(value)}`,
    });
    return;
  }
  const mapping = asMapping(value);
  if (typed.length === 1 || !mapping) {
    // One alternative of this type, or several non-mappings: the one with the fewest errors.
    const best = typed.reduce((b, i) => ((results[i]?.length ?? 0) < (results[b]?.length ?? 0) ? i : b));
    report(best);
    return;
  }
  const required = (i: number) => resolveRef(alternatives[i] ?? {}).required ?? [];
  const keyed = typed.filter((i) => required(i).every((k) => Object.hasOwn(mapping, k)));
  if (keyed.length === 1) {
    report(keyed[0] as number);
    return;
  }
  const choices = [...new Set(typed.flatMap(required))];
  if (keyed.length > 1) {
    const present = choices.filter((k) => Object.hasOwn(mapping, k)).map((k) => `"${k}"`);
    out.push({
      path,
      at: "value",
      message: `has ${orList(present).replace(" or ", " and ")}: only one is allowed`,
    });
    return;
  }
  const known = [
    ...new Set(typed.flatMap((i) => Object.keys(resolveRef(alternatives[i] ?? {}).properties ?? {}))),
  ];
  const unknown = Object.keys(mapping).filter((k) => !known.includes(k));
  for (const key of unknown) out.push(unknownField([...path, key], known, closest(key, known)));
  if (unknown.length === 0)
    out.push({ path, at: "value", message: `expected one of the fields ${choices.join(", ")}` });
}

/** The candidate nearest to `word` by edit distance, if near enough to be a likely typo. */
function closest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    const allowed = Math.max(1, Math.floor(Math.max(word.length, c.length) / 3));
    if (d <= allowed && d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

// ---------------------------------------------------------------------------------------------------
// Positions and paths.

/** The source offset of what a path names: the key or the value (the key when the value is empty). */
function offsetOf(doc: Document, path: Segment[], at: "key" | "value"): number {
  let node: unknown = doc.contents;
  let key: unknown;
  let complete = true;
  for (const segment of path) {
    if (isAlias(node)) node = node.resolve(doc);
    const pair = isMap(node) ? node.items.find((p) => keyText(p.key) === String(segment)) : undefined;
    if (pair) {
      key = pair.key;
      node = pair.value;
    } else if (isSeq(node) && typeof segment === "number" && segment < node.items.length) {
      key = undefined;
      node = node.items[segment];
    } else {
      // Not in the document as such (e.g. through an alias): the deepest node found will do.
      complete = false;
      break;
    }
  }
  const empty =
    node === null || node === undefined || (isScalar(node) && node.range?.[0] === node.range?.[1]);
  const target = key !== undefined && ((complete && at === "key") || empty) ? key : node;
  return rangeStart(target) ?? rangeStart(doc.contents) ?? 0;
}

function keyText(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

function rangeStart(node: unknown): number | undefined {
  const range = (node as { range?: [number, number, number] } | null | undefined)?.range;
  return range?.[0];
}

/** traffic[1].rate, cluster.nodes[0].labels["example.com/rack"]. */
function formatPath(path: Segment[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}

function asMapping(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

function asList(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

// ---------------------------------------------------------------------------------------------------
// What the schema cannot say. These run on files that may also have schema errors, so they look only
// at the parts that have the right shape.

const STEP_WINDOWS = ["before", "during", "after"] as const;

function crossChecks(v: Record<string, unknown>, out: Issue[]): void {
  const issue = (path: Segment[], message: string, at: "key" | "value" = "value") =>
    out.push({ path, at, message });

  const traffic = asList(v.traffic);
  const trafficNames = new Map<string, number>();
  for (const [i, t] of traffic.entries()) {
    const name = asMapping(t)?.name;
    if (typeof name !== "string") continue;
    const first = trafficNames.get(name);
    if (first === undefined) trafficNames.set(name, i);
    else issue(["traffic", i, "name"], `duplicate traffic name "${name}" (traffic[${first}] has it too)`);
  }
  // Paths can only be checked against a traffic list whose every entry has a name.
  const namesComplete = traffic.length > 0 && traffic.every((t) => typeof asMapping(t)?.name === "string");

  const steps = asList(v.steps);
  const stepIds: string[] = []; // each step's id, its position's when it has none
  const firstWithId = new Map<string, number>();
  for (const [i, s] of steps.entries()) {
    const id = asMapping(s)?.id;
    stepIds.push(typeof id === "string" ? id : String(i + 1));
    if (typeof id !== "string") continue;
    const first = firstWithId.get(id);
    if (first === undefined) firstWithId.set(id, i);
    else issue(["steps", i, "id"], `duplicate step id "${id}" (steps[${first}] has it too)`);
  }

  // Nodes named by index must exist (names can only be checked on the running cluster).
  const count = nodeCount(v.cluster);
  const checkNode = (ref: unknown, path: Segment[]) => {
    const digits = typeof ref === "string" && /^\d+$/.test(ref);
    const index = typeof ref === "number" ? ref : digits ? Number(ref) : undefined;
    // A name, or a wrong type or an index below 1 that the schema reports already.
    if (count === undefined || index === undefined || !Number.isInteger(index)) return;
    if (index < 1 && digits) issue(path, `node ${ref} does not exist (nodes are numbered from 1)`);
    else if (index > count)
      issue(path, `node ${index} does not exist: the cluster has ${count} node${count === 1 ? "" : "s"}`);
  };
  for (const [i, t] of traffic.entries()) {
    const m = asMapping(t);
    for (const key of ["from", "to"] as const) {
      const node = typeof m?.[key] === "string" ? /@([^@]*)$/.exec(m[key])?.[1] : undefined;
      if (node !== undefined) checkNode(node, ["traffic", i, key]);
    }
  }
  for (const [i, s] of steps.entries()) {
    const m = asMapping(s);
    if (!m) continue;
    for (const kind of ["cordon", "uncordon", "stopNode", "startNode", "drain"] as const)
      checkNode(m[kind], ["steps", i, kind]);
    for (const kind of ["drain", "taint", "untaint"] as const) {
      const a = asMapping(m[kind]);
      if (a) checkNode(a.node, ["steps", i, kind, "node"]);
    }
    for (const [j, n] of asList(m.rollNodes).entries()) checkNode(n, ["steps", i, "rollNodes", j]);
    for (const [j, n] of asList(asMapping(m.rollKubeProxy)?.nodes).entries())
      checkNode(n, ["steps", i, "rollKubeProxy", "nodes", j]);
  }

  const checkStep = (ref: unknown, path: Segment[]) => {
    const none = steps.length === 0 ? "the scenario has no steps" : undefined;
    if (typeof ref === "number" && Number.isInteger(ref) && ref > steps.length)
      issue(
        path,
        `no step ${ref} (${none ?? `the scenario has ${steps.length} step${steps.length === 1 ? "" : "s"}`})`,
      );
    else if (typeof ref === "string" && ref !== "" && !stepIds.includes(ref)) {
      const near = closest(ref, stepIds);
      issue(
        path,
        `no step with id "${ref}"${near ? ` (did you mean "${near}"?)` : ""} (${none ?? `step ids: ${stepIds.join(", ")}`})`,
      );
    }
  };
  const expected = new Set<unknown>();
  for (const [i, e] of asList(v.expect).entries()) {
    const m = asMapping(e);
    if (!m) continue;
    expected.add(m.verdict);
    if (namesComplete)
      for (const [j, p] of asList(m.paths).entries()) {
        if (typeof p !== "string" || trafficNames.has(p)) continue;
        const near = closest(p, [...trafficNames.keys()]);
        issue(
          ["expect", i, "paths", j],
          `no traffic named "${p}"${near ? ` (did you mean "${near}"?)` : ""} (traffic: ${[...trafficNames.keys()].join(", ")})`,
        );
      }
    const w = asMapping(m.window);
    const windowKey = STEP_WINDOWS.find((k) => w && Object.hasOwn(w, k));
    if (w && windowKey) checkStep(w[windowKey], ["expect", i, "window", windowKey]);
    if (m.verdict === "RecoveredWithin") {
      if (m.withinMs === undefined)
        issue(["expect", i, "verdict"], "RecoveredWithin needs withinMs (how long recovery may take)");
      if (!windowKey)
        issue(
          ["expect", i, "verdict"],
          "RecoveredWithin needs a window before, during or after a step (recovery is timed from its end)",
        );
    } else if (m.withinMs !== undefined && typeof m.verdict === "string")
      issue(["expect", i, "withinMs"], `only allowed with verdict RecoveredWithin, not ${m.verdict}`, "key");
  }
  // A known failure names verdicts that fail: ones the file expects.
  for (const [j, verdict] of asList(asMapping(v.knownFailure)?.verdicts).entries())
    if (typeof verdict === "string" && !expected.has(verdict))
      issue(["knownFailure", "verdicts", j], `no expectation has verdict ${verdict}, so it cannot fail`);
}

/** The cluster's node count: 2 by default; undefined when `cluster.nodes` is itself wrong. */
function nodeCount(cluster: unknown): number | undefined {
  const nodes = asMapping(cluster)?.nodes;
  if (nodes === undefined) return 2;
  if (typeof nodes === "number" && Number.isInteger(nodes) && nodes >= 1 && nodes <= 10) return nodes;
  if (Array.isArray(nodes) && nodes.length >= 1 && nodes.length <= 10) return nodes.length;
  return undefined;
}

const MANIFEST: JsonSchema = { $ref: "#/$defs/manifest" };

/**
 * The scenario's objects: inline manifests as they are (the schema checked them), manifest files read,
 * every document one object. A file's errors are reported at its list item, with their own position in
 * the manifest file.
 */
function readObjects(items: unknown, dir: string, out: Issue[]): Record<string, unknown>[] {
  const objects: Record<string, unknown>[] = [];
  for (const [i, item] of asList(items).entries()) {
    const path: Segment[] = ["objects", i];
    const inline = asMapping(item);
    if (inline) {
      if (inline.kind === "Namespace")
        out.push({ path: [...path, "kind"], at: "value", message: NO_NAMESPACE });
      objects.push(inline);
    } else if (typeof item === "string" && item !== "") {
      objects.push(...readManifestFile(item, dir, path, out));
    }
  }
  return objects;
}

const NO_NAMESPACE = "a scenario's objects go in a namespace of its own: drop the Namespace object";

function readManifestFile(
  name: string,
  dir: string,
  path: Segment[],
  out: Issue[],
): Record<string, unknown>[] {
  const issue = (message: string) => out.push({ path, at: "value", message });
  const file = resolve(dir, name);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") issue(`manifest file ${name} does not exist (resolved to ${file})`);
    else
      issue(
        `cannot read manifest file ${name} (${file}): ${err instanceof Error ? err.message : String(err)}`,
      );
    return [];
  }
  const lineCounter = new LineCounter();
  const where = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset);
    return `${name}:${line}:${col}`;
  };
  const objects: Record<string, unknown>[] = [];
  let failed = false;
  for (const doc of parseAllDocuments(text, { lineCounter, prettyErrors: false })) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors)
        issue(`manifest file ${name} is not valid YAML: ${where(e.pos[0])}: ${e.message}`);
      failed = true;
      continue;
    }
    let value: unknown;
    try {
      value = doc.toJS();
    } catch (err) {
      issue(`manifest file ${name}: ${err instanceof Error ? err.message : String(err)}`); // e.g. too many aliases
      failed = true;
      continue;
    }
    if (value === null || value === undefined) continue; // an empty document, e.g. after a trailing ---
    const inner: Issue[] = [];
    check(value, MANIFEST, [], inner);
    for (const i of inner)
      issue(
        `in ${where(offsetOf(doc, i.path, i.at))}: ${i.path.length > 0 ? `${formatPath(i.path)}: ` : ""}${i.message}`,
      );
    const object = asMapping(value);
    if (object?.kind === "Namespace") issue(`in ${where(offsetOf(doc, ["kind"], "value"))}: ${NO_NAMESPACE}`);
    if (inner.length > 0 || !object) failed = true;
    else objects.push(object);
  }
  if (objects.length === 0 && !failed) issue(`manifest file ${name} holds no manifests`);
  return objects;
}

// ---------------------------------------------------------------------------------------------------
// From the checked file to the Scenario. The file has passed every check, so these types hold.

type RawNode = number | string;
type RawStepRef = number | string;

interface RawScenario {
  name: string;
  description?: string;
  reproduces?: string;
  links?: string[];
  knownFailure?: { verdicts: string[]; because: string };
  releases?: { reported: string; fixed: string };
  cluster?: {
    nodes?: number | ScenarioCluster["nodes"];
    proxyMode?: "iptables" | "nftables";
    kubeProxyVersion?: string;
    kubeProxyConfig?: Record<string, unknown>;
  };
  objects: unknown[];
  traffic: TrafficSpec[];
  steps?: RawStep[];
  expect: RawExpectation[];
}

interface RawStep {
  id?: string;
  rolloutRestart?: string;
  rollout?: { workload: string; template: Record<string, unknown> };
  scale?: { deployment: string; replicas: number };
  deletePod?: { selector: string };
  cordon?: RawNode;
  uncordon?: RawNode;
  drain?: RawNode | { node: RawNode; timeoutSeconds?: number };
  taint?: { node: RawNode; key: string; value?: string; effect: string };
  untaint?: { node: RawNode; key: string; effect: string };
  patch?: { object: string; patch: Record<string, unknown> };
  stopNode?: RawNode;
  startNode?: RawNode;
  rollNodes?: "all" | RawNode[];
  rollKubeProxy?: { version: string; nodes?: RawNode[] };
  waitEndpoints?: { service: string; count: number };
  sleep?: number;
}

interface RawExpectation {
  verdict: VerdictName;
  paths?: string[];
  window?: "whole" | { before: RawStepRef } | { during: RawStepRef } | { after: RawStepRef };
  withinMs?: number;
}

function toScenario(raw: RawScenario, file: string, objects: Record<string, unknown>[]): Scenario {
  const c = raw.cluster ?? {};
  // An integer n is n nodes with nothing special about them; the default is 2.
  const nodes =
    typeof c.nodes === "number"
      ? Array.from({ length: c.nodes }, () => ({}))
      : (c.nodes?.map((n) => ({ ...n })) ?? [{}, {}]);
  const allNodes = nodes.map((_, i) => String(i + 1));
  const steps = (raw.steps ?? []).map(
    (s, i): Step => ({ id: s.id ?? String(i + 1), ...toAction(s, allNodes) }),
  );
  return {
    file,
    name: raw.name,
    ...(raw.description !== undefined && { description: raw.description }),
    ...(raw.reproduces !== undefined && { reproduces: raw.reproduces }),
    ...(raw.links !== undefined && { links: raw.links }),
    cluster: {
      nodes,
      ...(c.proxyMode !== undefined && { proxyMode: c.proxyMode }),
      ...(c.kubeProxyVersion !== undefined && { kubeProxyVersion: c.kubeProxyVersion }),
      ...(c.kubeProxyConfig !== undefined && { kubeProxyConfig: c.kubeProxyConfig }),
    },
    objects,
    traffic: raw.traffic.map((t) => ({ ...t })),
    steps,
    expect: raw.expect.map((e) => toExpectation(e, steps)),
    ...(raw.knownFailure !== undefined && { knownFailure: raw.knownFailure }),
    ...(raw.releases !== undefined && { releases: raw.releases }),
  };
}

/** The step's one action (the schema made sure there is exactly one), nodes as strings. */
function toAction(s: RawStep, allNodes: string[]): StepAction {
  if (s.rolloutRestart !== undefined) return { kind: "rolloutRestart", workload: s.rolloutRestart };
  if (s.rollout !== undefined)
    return { kind: "rollout", workload: s.rollout.workload, template: s.rollout.template };
  if (s.scale !== undefined)
    return { kind: "scale", deployment: s.scale.deployment, replicas: s.scale.replicas };
  if (s.deletePod !== undefined) return { kind: "deletePod", selector: s.deletePod.selector };
  if (s.cordon !== undefined) return { kind: "cordon", node: String(s.cordon) };
  if (s.uncordon !== undefined) return { kind: "uncordon", node: String(s.uncordon) };
  if (s.drain !== undefined) {
    if (typeof s.drain !== "object") return { kind: "drain", node: String(s.drain) };
    const { node, timeoutSeconds } = s.drain;
    return { kind: "drain", node: String(node), ...(timeoutSeconds !== undefined && { timeoutSeconds }) };
  }
  if (s.taint !== undefined) {
    const { node, key, value, effect } = s.taint;
    return { kind: "taint", node: String(node), key, ...(value !== undefined && { value }), effect };
  }
  if (s.untaint !== undefined)
    return { kind: "untaint", node: String(s.untaint.node), key: s.untaint.key, effect: s.untaint.effect };
  if (s.patch !== undefined) return { kind: "patch", object: s.patch.object, patch: s.patch.patch };
  if (s.stopNode !== undefined) return { kind: "stopNode", node: String(s.stopNode) };
  if (s.startNode !== undefined) return { kind: "startNode", node: String(s.startNode) };
  if (s.rollNodes !== undefined)
    return { kind: "rollNodes", nodes: s.rollNodes === "all" ? allNodes : s.rollNodes.map(String) };
  if (s.rollKubeProxy !== undefined) {
    const { version, nodes } = s.rollKubeProxy;
    return { kind: "rollKubeProxy", version, ...(nodes !== undefined && { nodes: nodes.map(String) }) };
  }
  if (s.waitEndpoints !== undefined)
    return { kind: "waitEndpoints", service: s.waitEndpoints.service, count: s.waitEndpoints.count };
  if (s.sleep !== undefined) return { kind: "sleep", seconds: s.sleep };
  throw new Error(`a checked step has no action: ${JSON.stringify(s)}`);
}

/** Windows name steps by id (a position becomes that step's id); "whole" is the default, no window. */
function toExpectation(e: RawExpectation, steps: Step[]): Expectation {
  const id = (ref: RawStepRef) => (typeof ref === "number" ? (steps[ref - 1]?.id ?? String(ref)) : ref);
  const w = e.window;
  const window =
    w === undefined || w === "whole"
      ? undefined
      : "before" in w
        ? { before: id(w.before) }
        : "during" in w
          ? { during: id(w.during) }
          : { after: id(w.after) };
  return {
    verdict: e.verdict,
    ...(e.paths !== undefined && { paths: e.paths }),
    ...(window !== undefined && { window }),
    ...(e.withinMs !== undefined && { withinMs: e.withinMs }),
  };
}
