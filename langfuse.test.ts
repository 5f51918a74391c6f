/**
 * langfuse.ts, specified by what a user would notice. Unit and contract tests here; the real hosts
 * are driven end to end in test/*.e2e.test.ts.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import * as zlib from "node:zlib";
import langfuse, { type Internals } from "./langfuse.ts";
import { readAgentSession, sumUsage } from "./test/support/hosts.ts";
import { decodeAttributes } from "./test/support/receiver.ts";
import { readRecording, replay } from "./test/support/replay.ts";
import { encodeSpan } from "./test/support/spans.ts";

const internals = (langfuse as unknown as { internals: Internals }).internals;
const { readConfig, sanitize, prepareRecord, otlpBody, ingestionEvents, SessionRecorder, Exporter, Logger, createRuntime, attachPiHost } =
	internals;

const KEYS = { LANGFUSE_PUBLIC_KEY: "pk-lf-11111111-2222-3333-4444-555555555555", LANGFUSE_SECRET_KEY: "sk-lf-99999999-8888-7777-6666-555555555555" };
const noRedact = (text: string) => text;

let tmp: string;
beforeEach(() => {
	tmp = fs.mkdtempSync(path.join(os.tmpdir(), "langfuse-ts-test-"));
});
afterEach(() => {
	fs.rmSync(tmp, { recursive: true, force: true });
});

// ── a fake Langfuse: answers by script, decodes what arrives ────────────────────────────────────

/** A request body as the server reads it: bytes (gunzipped when sent with Content-Encoding: gzip) → text. */
function decodeBody(init: RequestInit): string {
	const headers = (init.headers ?? {}) as Record<string, string>;
	const raw = typeof init.body === "string" ? Buffer.from(init.body) : Buffer.from(init.body as Uint8Array);
	return (headers["Content-Encoding"] === "gzip" ? zlib.gunzipSync(raw) : raw).toString("utf8");
}

type Answer = number | { status: number; body?: unknown; headers?: Record<string, string> } | "network-error";

function fakeLangfuse(script: Answer[] = [], rules: { reject?: (span: any) => boolean; status?: number; maxSpans?: number; refuseGzip?: boolean } = {}) {
	const requests: { url: string; body: any; headers: Record<string, string>; raw: RequestInit["body"]; status?: number }[] = [];
	const fetch = async (url: string, init: RequestInit) => {
		const headers = init.headers as Record<string, string>;
		if (rules.refuseGzip && headers["Content-Encoding"] === "gzip") {
			requests.push({ url, body: undefined, headers, raw: init.body, status: 415 });
			return new Response("unsupported content encoding", { status: 415 });
		}
		const body = JSON.parse(decodeBody(init));
		const request: (typeof requests)[number] = { url, body, headers, raw: init.body };
		requests.push(request);
		const spansOf = () => (body.resourceSpans ?? []).flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans));
		if (rules.reject && spansOf().some(rules.reject)) {
			request.status = rules.status ?? 400;
			return new Response(JSON.stringify({ message: "invalid span" }), { status: request.status });
		}
		if (rules.maxSpans && spansOf().length > rules.maxSpans) {
			request.status = 413;
			return new Response("payload too large", { status: 413 });
		}
		const answer = script.length ? script.shift()! : 200;
		request.status = typeof answer === "number" ? answer : answer === "network-error" ? 0 : answer.status;
		if (answer === "network-error") throw new TypeError("fetch failed");
		const { status, body: answerBody, headers: answerHeaders } = typeof answer === "number" ? { status: answer, body: {}, headers: {} } : answer;
		return new Response(JSON.stringify(answerBody ?? {}), { status, headers: answerHeaders });
	};
	const spans = () =>
		requests
			.filter(request => request.body && request.url.endsWith("/otel/v1/traces"))
			.flatMap(request => request.body.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans)))
			.map((span: any) => ({ ...span, attrs: decodeAttributes(span.attributes) as Record<string, any> }));
	/** Spans of requests answered 2xx: what Langfuse stored. */
	const accepted = () =>
		requests
			.filter(request => request.body && request.url.endsWith("/otel/v1/traces") && request.status! >= 200 && request.status! < 300)
			.flatMap(request => request.body.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans)))
			.map((span: any) => ({ ...span, attrs: decodeAttributes(span.attributes) as Record<string, any> }));
	return { fetch, requests, spans, accepted };
}

function config(overrides: Record<string, string> = {}) {
	return readConfig({ ...KEYS, LANGFUSE_HOST: "http://langfuse.test", LANGFUSE_SPOOL_DIR: path.join(tmp, "spool"), LANGFUSE_FLUSH_MS: "600000", ...overrides }).config;
}

/** Lets timers and I/O run until `done()` holds (fails the test after 5 s). */
async function until(done: () => boolean, timeoutMs = 5000): Promise<void> {
	const give = Date.now() + timeoutMs;
	while (!done()) {
		if (Date.now() > give) throw new Error("condition not reached");
		await new Promise(resolve => setTimeout(resolve, 5));
	}
}

function exporterWith(langfuseFake: ReturnType<typeof fakeLangfuse>, overrides: Record<string, string> = {}) {
	const lines: string[] = [];
	const log = new Logger(noRedact, false, (line: string) => lines.push(line));
	const exporter = new Exporter(config(overrides), noRedact, log, { fetch: langfuseFake.fetch, backoffMs: () => 0 });
	return { exporter, lines };
}

function recorderInto(records: any[], overrides: Record<string, unknown> = {}) {
	return new SessionRecorder((record: any) => records.push(record), {
		sessionId: "session-1",
		host: "omp",
		metadata: { host: "omp" },
		tags: ["omp"],
		userId: "alice",
		grouping: "prompt",
		exportMode: "full",
		tracePrefix: "",
		...overrides,
	});
}

/** One prompt whose tools (bash, input `{i}`) return these outputs, as records. */
function promptWithOutputs(outputs: unknown[]): any[] {
	const records: any[] = [];
	const recorder = recorderInto(records);
	recorder.startPrompt(1, { input: "run the tools" });
	outputs.forEach((output, i) => {
		recorder.startTool(`t${i}`, 2, { name: "bash", input: { i } });
		recorder.endTool(`t${i}`, 3, { output });
	});
	recorder.endPrompt(4);
	return records;
}

/** One prompt: a turn with an LLM call that asks for a tool, the tool, then the answer. Five records:
 *  the trace announced, the LLM call, the tool, the turn, the trace complete. */
const RECORDS_PER_PROMPT = 5;
/** What one flush of those sends: the trace's two versions share a span id, and a request carries
 *  only the latest version of a span (a later emission is a superset of an earlier one). */
const SPANS_PER_PROMPT = 4;
/** Distinct spans among records, as the exporter sends them. */
const distinctSpans = (records: any[]) => new Set(records.map(record => `${record.traceId}:${record.id}`)).size;

function recordOnePrompt(recorder: any, t0 = 1_700_000_000_000) {
	recorder.startPrompt(t0, { input: "Fix the failing test\nand explain" });
	recorder.startTurn(t0 + 1, { name: "turn 0" });
	recorder.startGeneration("llm:1", t0 + 2, { model: "mock-model", input: [{ role: "user", content: "Fix the failing test" }] });
	recorder.markFirstToken("llm:1", t0 + 50);
	recorder.markFirstToken("llm:1", t0 + 60);
	recorder.endGeneration("llm:1", t0 + 100, { output: "calling bash", usage: { input: 1000, input_cache_read: 200, output: 50, total: 1250 }, cost: { total: 0.004 } });
	recorder.startTool("tool:a", t0 + 101, { name: "bash", input: { command: "bun test" } });
	recorder.endTool("tool:a", t0 + 300, { output: "1 fail", level: "ERROR", statusMessage: "exit code 1" });
	recorder.endTurn(t0 + 301);
	recorder.noteOutput("The test fails because …");
	recorder.endPrompt(t0 + 400);
}

// ════════════════════════════════════════════════════════════════════════════════════════════════
describe("config: environment variables only, bad values never stop the agent", () => {
	test("defaults match the README", () => {
		const { config: c, problems } = readConfig({ ...KEYS, HOME: "/home/u" });
		expect(problems).toEqual([]);
		expect(c).toMatchObject({
			enabled: true,
			host: "https://cloud.langfuse.com",
			flushMs: 2000,
			maxQueue: 500,
			sampleRate: 1,
			tags: [],
			debug: false,
			uiIndicator: true,
			grouping: "prompt",
			exportMode: "full",
			maxFieldChars: 64_000,
			spoolDir: "/home/u/.cache/langfuse-ts/spool",
			maxSpoolBytes: 100 * 1024 * 1024,
			retentionDays: 7,
			transport: "otel",
			tracePrefix: "",
		});
	});

	test("missing keys turn tracing off and say which variable", () => {
		const { config: c } = readConfig({ LANGFUSE_PUBLIC_KEY: "pk-lf-x" });
		expect(c.enabled).toBe(false);
		expect(c.disabledReason).toBe("LANGFUSE_SECRET_KEY not set");
	});

	test("a bad value names the variable, explains, and falls back to the default", () => {
		const { config: c, problems } = readConfig({ ...KEYS, LANGFUSE_SAMPLE_RATE: "abc", LANGFUSE_FLUSH_MS: "-5", LANGFUSE_DEBUG: "maybe" });
		expect(c.sampleRate).toBe(1);
		expect(c.flushMs).toBe(2000);
		expect(c.debug).toBe(false);
		expect(problems).toHaveLength(3);
		expect(problems.join("\n")).toContain('LANGFUSE_SAMPLE_RATE="abc" is not a decimal number from 0 to 1; using 1');
	});

	test("a host that is not a URL turns tracing off with one reason", () => {
		const { config: c, problems } = readConfig({ ...KEYS, LANGFUSE_HOST: "cloud.langfuse.com" });
		expect(c.enabled).toBe(false);
		expect(c.disabledReason).toBe('LANGFUSE_HOST="cloud.langfuse.com" is not an http(s) URL');
		expect(problems).toEqual([]);
	});

	test("LANGFUSE_BASE_URL is accepted, trailing slashes dropped", () => {
		expect(readConfig({ ...KEYS, LANGFUSE_BASE_URL: "https://us.cloud.langfuse.com/" }).config.host).toBe("https://us.cloud.langfuse.com");
	});

	test("environment follows Langfuse's rules, else the default is used", () => {
		expect(readConfig({ ...KEYS, LANGFUSE_ENVIRONMENT: "staging-eu" }).config.environment).toBe("staging-eu");
		for (const bad of ["Production", "langfuse-x", "a".repeat(41), "has space"]) {
			const { config: c, problems } = readConfig({ ...KEYS, LANGFUSE_ENVIRONMENT: bad });
			expect(c.environment).toBeUndefined();
			expect(problems[0]).toContain("LANGFUSE_ENVIRONMENT");
		}
	});

	test("OPENCODE_LANGFUSE_* aliases work; the LANGFUSE_* name wins when both are set", () => {
		const aliases = readConfig({
			...KEYS,
			OPENCODE_LANGFUSE_EXPORT_MODE: "metadata_only",
			OPENCODE_LANGFUSE_SPOOL_DIR: "/tmp/x",
			OPENCODE_LANGFUSE_MAX_SPOOL_MB: "5",
			OPENCODE_LANGFUSE_RETENTION_DAYS: "2",
			OPENCODE_LANGFUSE_TRACE_PREFIX: "oc: ",
			OPENCODE_LANGFUSE_VERBOSE: "true",
		}).config;
		expect(aliases).toMatchObject({ exportMode: "metadata_only", spoolDir: "/tmp/x", maxSpoolBytes: 5 * 1024 * 1024, retentionDays: 2, tracePrefix: "oc: ", debug: true });
		expect(readConfig({ ...KEYS, LANGFUSE_EXPORT_MODE: "full", OPENCODE_LANGFUSE_EXPORT_MODE: "metadata_only" }).config.exportMode).toBe("full");
		expect(readConfig({ ...KEYS, OPENCODE_LANGFUSE_ENABLED: "false" }).config.enabled).toBe(false);
		expect(readConfig({ ...KEYS, LANGFUSE_EXPORT_MODE: "off" }).config.enabled).toBe(false);
	});

	test("tags are a comma list", () => {
		expect(readConfig({ ...KEYS, LANGFUSE_TAGS: "work, laptop,,x" }).config.tags).toEqual(["work", "laptop", "x"]);
	});

	test("debug output shows the config with keys masked, never the secret key", () => {
		const lines: string[] = [];
		createRuntime({ ...KEYS, LANGFUSE_DEBUG: "1", LANGFUSE_SPOOL_DIR: path.join(tmp, "s") }, { write: (line: string) => lines.push(line), exitHook: false }).exporter!.stop();
		const text = lines.join("\n");
		expect(text).toContain("config: host=https://cloud.langfuse.com");
		expect(text).toContain("public_key=pk-lf-11…5555");
		expect(text).not.toContain(KEYS.LANGFUSE_SECRET_KEY);
		expect(text).not.toContain(KEYS.LANGFUSE_SECRET_KEY.slice(6, 30));
	});

	test("tracing off says so in exactly one line", () => {
		const lines: string[] = [];
		createRuntime({}, { write: (line: string) => lines.push(line), exitHook: false });
		expect(lines).toEqual(["[langfuse] tracing off: LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY not set"]);
	});
});

// ════════════════════════════════════════════════════════════════════════════════════════════════
describe("sanitize: any value becomes bounded, readable JSON", () => {
	const options = { redact: noRedact, maxFieldChars: 1000, budgetChars: 1_000_000 };

	test("long strings keep head and tail around a marker that says how much was cut", () => {
		const text = "word ".repeat(10_000);
		const out = sanitize(text, options) as string;
		expect(out.length).toBeLessThan(1200);
		expect(out.startsWith("word word")).toBe(true);
		expect(out.trimEnd().endsWith("word")).toBe(true);
		expect(out).toMatch(/\[… [\d,]+ chars truncated by langfuse\.ts …\]/);
	});

	test("cuts land on whitespace, so no token is split in half", () => {
		const token = "ghp_" + "A".repeat(36);
		const text = `${"x ".repeat(240)}${token} ${"y ".repeat(2000)}`;
		const out = sanitize(text, { ...options, maxFieldChars: 1000 }) as string;
		const pieces = out.split(/\s+/);
		for (const piece of pieces) if (piece.startsWith("ghp_")) expect(piece).toBe(token);
	});

	test("a private key block cut open by truncation is dropped whole", () => {
		const key = `-----BEGIN OPENSSH PRIVATE KEY-----\n${"b3BlbnNzaC1rZXktdjEAAAAA\n".repeat(200)}-----END OPENSSH PRIVATE KEY-----`;
		const out = sanitize(`intro ${key} outro`, options) as string;
		expect(out).not.toContain("b3BlbnNzaC1rZXktdjEAAAAA");
	});

	test("cycles, BigInt, functions, symbols, Map, Set, Error, Date, buffers and throwing getters", () => {
		const cyclic: any = { name: "loop" };
		cyclic.self = cyclic;
		const tricky = {
			cyclic,
			big: 12345678901234567890n,
			fn: function handler() {},
			sym: Symbol("s"),
			map: new Map([["a", 1]]),
			set: new Set([1, 2]),
			error: new Error("boom"),
			date: new Date(0),
			bytes: new Uint8Array(16),
			buffer: Buffer.from("hello"),
			nan: Number.NaN,
			get broken() {
				throw new Error("getter says no");
			},
		};
		const out = sanitize(tricky, options) as any;
		expect(out.cyclic.self).toBe("[circular]");
		expect(out.big).toBe("12345678901234567890");
		expect(out.fn).toBe("[function handler]");
		expect(out.sym).toBe("Symbol(s)");
		expect(out.map).toEqual({ a: 1 });
		expect(out.set).toEqual([1, 2]);
		expect(out.error).toMatchObject({ name: "Error", message: "boom" });
		expect(out.date).toBe("1970-01-01T00:00:00.000Z");
		expect(out.bytes).toBe("[Uint8Array 16 bytes]");
		expect(out.buffer).toBe("[Buffer 5 bytes]");
		expect(out.nan).toBe("NaN");
		expect(out.broken).toContain("getter says no");
		expect(() => JSON.stringify(out)).not.toThrow();
	});

	test("depth, array length and key count are capped", () => {
		let deep: any = "bottom";
		for (let i = 0; i < 50; i++) deep = { deeper: deep };
		expect(JSON.stringify(sanitize(deep, options))).toContain("nested too deep");
		const long = sanitize(Array.from({ length: 2000 }, (_, i) => i), options) as unknown[];
		expect(long).toHaveLength(501);
		expect(long[500]).toBe("[… 1500 more items]");
		const wide = sanitize(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`k${i}`, i])), options) as Record<string, unknown>;
		expect(Object.keys(wide)).toHaveLength(301);
	});

	test("images never leave the machine: a marker records type and size", () => {
		const data = Buffer.alloc(30_000, 7).toString("base64");
		const out = sanitize(
			{
				parts: [
					{ type: "image", data, mimeType: "image/png" },
					{ type: "text", text: `see data:image/jpeg;base64,${data} here` },
				],
			},
			options,
		) as any;
		const text = JSON.stringify(out);
		expect(text).not.toContain(data.slice(0, 100));
		expect(out.parts[0].image).toBe("[image image/png 29.3 KB base64 omitted]");
		expect(out.parts[1].text).toBe("see [image image/jpeg 29.3 KB base64 omitted] here");
	});

	test("a record's total size is bounded by its character budget", () => {
		const huge = Array.from({ length: 400 }, () => "z".repeat(50_000));
		const out = JSON.stringify(sanitize(huge, { ...options, maxFieldChars: 64_000, budgetChars: 1_000_000 }));
		expect(out.length).toBeLessThan(1_200_000);
	});
});

// ════════════════════════════════════════════════════════════════════════════════════════════════
describe("record: one trace per prompt, turns, LLM calls and tools as a tree", () => {
	test("a prompt becomes a trace named by its first line, with the answer as output", () => {
		const records: any[] = [];
		recordOnePrompt(recorderInto(records));
		const final = records.at(-1);
		expect(final.type).toBe("agent");
		expect(final.parentId).toBeUndefined();
		expect(final.trace).toMatchObject({ name: "Fix the failing test", input: "Fix the failing test\nand explain", output: "The test fails because …", tags: ["omp"] });
		expect(final.endMs - final.startMs).toBe(400);
	});

	test("the trace is announced when the prompt starts, so a crash mid-prompt still leaves a named trace", () => {
		const records: any[] = [];
		const recorder = recorderInto(records);
		recorder.startPrompt(1000, { input: "hello" });
		expect(records).toHaveLength(1);
		expect(records[0].trace.name).toBe("hello");
	});

	test("LLM calls and tools hang under their turn; the turn under the trace", () => {
		const records: any[] = [];
		recordOnePrompt(recorderInto(records));
		const byType = (type: string) => records.filter(r => r.type === type);
		const [root] = byType("agent");
		const [turn] = byType("span");
		const [generation] = byType("generation");
		const [tool] = byType("tool");
		expect(turn.parentId).toBe(root.id);
		expect(generation.parentId).toBe(turn.id);
		expect(tool.parentId).toBe(turn.id);
		expect(new Set(records.map(r => r.traceId)).size).toBe(1);
		expect(generation.completionStartMs).toBe(1_700_000_000_050);
		expect(tool).toMatchObject({ name: "bash", level: "ERROR", statusMessage: "exit code 1", output: "1 fail" });
	});

	test("every record carries session, user and a unique emission id", () => {
		const records: any[] = [];
		recordOnePrompt(recorderInto(records));
		for (const record of records) expect(record).toMatchObject({ sessionId: "session-1", userId: "alice" });
		expect(new Set(records.map(r => r.emissionId)).size).toBe(records.length);
	});

	test("two prompts are two traces in the same session", () => {
		const records: any[] = [];
		const recorder = recorderInto(records);
		recordOnePrompt(recorder, 1000);
		recordOnePrompt(recorder, 5000);
		expect(new Set(records.map(r => r.traceId)).size).toBe(2);
	});

	test("grouping by session: one trace, each prompt a chain span, the root re-sent as it grows", () => {
		const records: any[] = [];
		const recorder = recorderInto(records, { grouping: "session" });
		recordOnePrompt(recorder, 1000);
		recordOnePrompt(recorder, 5000);
		expect(new Set(records.map(r => r.traceId)).size).toBe(1);
		const roots = records.filter(r => r.parentId === undefined);
		expect(new Set(roots.map(r => r.id)).size).toBe(1);
		expect(roots.at(-1).endMs).toBe(5400);
		const prompts = records.filter(r => r.type === "chain");
		expect(prompts).toHaveLength(2);
		for (const prompt of prompts) expect(prompt.parentId).toBe(roots[0].id);
	});

	test("metadata_only names traces without prompt text", () => {
		const records: any[] = [];
		recordOnePrompt(recorderInto(records, { exportMode: "metadata_only" }));
		expect(records[0].trace.name).toBe("omp prompt 1");
	});

	test("a goal renames the current trace and every later one", () => {
		const records: any[] = [];
		const recorder = recorderInto(records);
		recorder.startPrompt(1000, { input: "first" });
		recorder.rename("Ship the release");
		recorder.endPrompt(2000);
		recorder.startPrompt(3000, { input: "second" });
		recorder.endPrompt(4000);
		expect(records.filter(r => r.trace).map(r => r.trace.name)).toEqual(["first", "Ship the release", "Ship the release", "Ship the release", "Ship the release"]);
	});

	test("closing a session ends whatever is still open, marked as a warning", () => {
		const records: any[] = [];
		const recorder = recorderInto(records);
		recorder.startPrompt(1000, { input: "x" });
		recorder.startTool("tool:1", 1100, { name: "bash" });
		recorder.close(2000);
		const tool = records.find(r => r.type === "tool");
		expect(tool).toMatchObject({ level: "WARNING", endMs: 2000 });
		expect(records.at(-1).endMs).toBe(2000);
	});
});

// ════════════════════════════════════════════════════════════════════════════════════════════════
describe("encode: OTLP/HTTP JSON exactly as Langfuse parses it", () => {
	const records: any[] = [];
	recordOnePrompt(recorderInto(records, { environment: "dev", release: "v1" }));
	const spans = records.map(record => JSON.parse(encodeSpan(record)));
	const attrs = (span: any) => Object.fromEntries(span.attributes.map((a: any) => [a.key, a.value]));

	test("ids are lowercase hex of the right length; parents point at spans of the same trace", () => {
		for (const span of spans) {
			expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
			expect(span.spanId).toMatch(/^[0-9a-f]{16}$/);
			if (span.parentSpanId) {
				expect(span.parentSpanId).toMatch(/^[0-9a-f]{16}$/);
				expect(spans.some(other => other.spanId === span.parentSpanId)).toBe(true);
			}
		}
	});

	test("times are nanosecond decimal strings", () => {
		for (const span of spans) {
			expect(span.startTimeUnixNano).toMatch(/^\d{19}$/);
			expect(span.endTimeUnixNano).toMatch(/^\d{19}$/);
			expect(BigInt(span.endTimeUnixNano) >= BigInt(span.startTimeUnixNano)).toBe(true);
		}
	});

	test("attribute values carry the right OTLP types", () => {
		const root = attrs(spans.at(-1));
		expect(root["langfuse.trace.name"]).toEqual({ stringValue: "Fix the failing test" });
		expect(root["langfuse.trace.tags"]).toEqual({ arrayValue: { values: [{ stringValue: "omp" }] } });
		expect(root["session.id"]).toEqual({ stringValue: "session-1" });
		expect(root["user.id"]).toEqual({ stringValue: "alice" });
		expect(root["langfuse.environment"]).toEqual({ stringValue: "dev" });
		expect(root["langfuse.release"]).toEqual({ stringValue: "v1" });
		expect(root["langfuse.trace.input"]).toEqual({ stringValue: "Fix the failing test\nand explain" });
		expect(JSON.parse(root["langfuse.trace.metadata"].stringValue)).toEqual({ host: "omp", tracer: "langfuse.ts 0.1.0" });
	});

	test("generations carry model, usage and cost as JSON objects Langfuse can sum", () => {
		const generation = attrs(spans.find(span => attrs(span)["langfuse.observation.type"].stringValue === "generation"));
		expect(generation["langfuse.observation.model.name"]).toEqual({ stringValue: "mock-model" });
		expect(JSON.parse(generation["langfuse.observation.usage_details"].stringValue)).toEqual({ input: 1000, input_cache_read: 200, output: 50, total: 1250 });
		expect(JSON.parse(generation["langfuse.observation.cost_details"].stringValue)).toEqual({ total: 0.004 });
		// JSON-encoded, as Langfuse's SDKs send it (older servers JSON.parse it)
		expect(JSON.parse(generation["langfuse.observation.completion_start_time"].stringValue)).toBe(new Date(1_700_000_000_050).toISOString());
	});

	test("errors set level ERROR and OTLP status code 2", () => {
		const tool = spans.find(span => span.name === "bash");
		expect(attrs(tool)["langfuse.observation.level"]).toEqual({ stringValue: "ERROR" });
		expect(tool.status).toEqual({ code: 2, message: "exit code 1" });
	});

	test("the request body is an ExportTraceServiceRequest", () => {
		const body = JSON.parse(otlpBody(records.map(encodeSpan)));
		// the scope Langfuse reads langfuse.* usage and cost from, without copying raw attributes into metadata
		expect(body.resourceSpans[0].scopeSpans[0].scope.name).toBe("langfuse-sdk");
		expect(body.resourceSpans[0].scopeSpans[0].spans).toHaveLength(records.length);
	});

	test("legacy ingestion: a trace-create for the root, typed creates with stable body ids", () => {
		const events: any[] = records.flatMap(ingestionEvents);
		expect(events.filter(e => e.type === "trace-create")).toHaveLength(2);
		expect(events.filter(e => e.type === "generation-create")[0].body).toMatchObject({ model: "mock-model", usageDetails: { input: 1000 } });
		expect(new Set(events.map(e => e.id)).size).toBe(events.length);
		const roots = events.filter(e => e.type === "span-create" && e.body.parentObservationId === undefined);
		expect(roots.every(e => e.body.id === roots[0].body.id)).toBe(true);
	});

	test("metadata_only sends structure, names, timings, models, tokens and costs, but no content", () => {
		const metadataOnly: any[] = [];
		recordOnePrompt(recorderInto(metadataOnly, { exportMode: "metadata_only" }));
		const prepared = metadataOnly.map(record =>
			prepareRecord(record, { redact: noRedact, maxFieldChars: 64_000, budgetChars: 1_000_000, exportMode: "metadata_only" }),
		);
		const text = JSON.stringify(prepared);
		expect(text).not.toContain("Fix the failing test");
		expect(text).not.toContain("bun test");
		expect(text).not.toContain("1 fail");
		expect(text).not.toContain("exit code 1");
		expect(text).toContain("mock-model");
		expect(text).toContain('"input_cache_read":200');
		expect(prepared.find((r: any) => r.type === "tool")!.name).toBe("bash");
	});
});

// ════════════════════════════════════════════════════════════════════════════════════════════════
describe("transport: batches, retries, spool — nothing lost, nothing sent twice", () => {
	function someRecords(count = 1, sessionId = "s") {
		const records: any[] = [];
		const recorder = recorderInto(records, { sessionId });
		for (let i = 0; i < count; i++) recordOnePrompt(recorder, 1000 + i * 1000);
		return records;
	}

	test("a flush sends queued observations and removes them from the spool once confirmed", async () => {
		const langfuseFake = fakeLangfuse();
		const { exporter } = exporterWith(langfuseFake);
		for (const record of someRecords()) exporter.enqueue(record);
		await exporter.flush();
		expect(langfuseFake.spans()).toHaveLength(SPANS_PER_PROMPT);
		expect(langfuseFake.requests[0].url).toBe("http://langfuse.test/api/public/otel/v1/traces");
		expect(langfuseFake.requests[0].headers.Authorization).toBe(`Basic ${Buffer.from(`${KEYS.LANGFUSE_PUBLIC_KEY}:${KEYS.LANGFUSE_SECRET_KEY}`).toString("base64")}`);
		expect((await exporter.spool.stats()).files).toBe(0);
		expect(exporter.status).toMatchObject({ sentSpans: SPANS_PER_PROMPT, queued: 0, waitingBatches: 0 });
	});

	test("a prompt's end sends at once; prompts that end within the next second share one request", async () => {
		const langfuseFake = fakeLangfuse();
		const { exporter } = exporterWith(langfuseFake);
		for (const record of someRecords(1, "a")) exporter.enqueue(record);
		exporter.sendSoon();
		await until(() => langfuseFake.spans().length >= SPANS_PER_PROMPT);
		expect(langfuseFake.requests).toHaveLength(1);
		// two more prompts end right after, 100 ms apart: their spans wait for the gap, then go together
		for (const sessionId of ["b", "c"]) {
			for (const record of someRecords(1, sessionId)) exporter.enqueue(record);
			exporter.sendSoon();
			await new Promise(resolve => setTimeout(resolve, 100));
		}
		await until(() => langfuseFake.spans().length >= 3 * SPANS_PER_PROMPT);
		expect(langfuseFake.requests).toHaveLength(2);
	});

	test("reaching LANGFUSE_MAX_QUEUE flushes without waiting for the timer", async () => {
		const langfuseFake = fakeLangfuse();
		const { exporter } = exporterWith(langfuseFake, { LANGFUSE_MAX_QUEUE: "5" });
		for (const record of someRecords()) exporter.enqueue(record);
		// no flush() and a 600 s timer: only the queue threshold can have sent these
		await until(() => langfuseFake.spans().length >= SPANS_PER_PROMPT);
		expect(langfuseFake.spans()).toHaveLength(SPANS_PER_PROMPT);
	});

	test("queued work is on disk, private, before any request is made", async () => {
		const { exporter } = exporterWith(fakeLangfuse(["network-error"]));
		for (const record of someRecords()) exporter.enqueue(record);
		await exporter.flush();
		const dir = path.join(tmp, "spool");
		expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
		const files = fs.readdirSync(dir).filter(name => name.endsWith(`.jsonl.${process.pid}`));
		expect(files).toHaveLength(1);
		expect(fs.statSync(path.join(dir, files[0]!)).mode & 0o777).toBe(0o600);
	});

	test("network errors, timeouts, 408, 429 and 5xx are retried until they succeed, each span once", async () => {
		const langfuseFake = fakeLangfuse(["network-error", 500, 503, 408, { status: 429, headers: { "retry-after": "0" } }, 200]);
		const { exporter } = exporterWith(langfuseFake);
		for (const record of someRecords()) exporter.enqueue(record);
		for (let i = 0; i < 6; i++) await exporter.flush();
		expect(langfuseFake.requests).toHaveLength(6);
		expect(exporter.status.sentSpans).toBe(SPANS_PER_PROMPT);
		expect((await exporter.spool.stats()).files).toBe(0);
	});

	test("Retry-After is honoured", async () => {
		const langfuseFake = fakeLangfuse([{ status: 429, headers: { "retry-after": "3" } }]);
		const { exporter } = exporterWith(langfuseFake);
		for (const record of someRecords()) exporter.enqueue(record);
		await exporter.flush();
		await exporter.flush();
		expect(langfuseFake.requests).toHaveLength(1);
		expect(exporter.status.lastError).toBe("HTTP 429");
	});

	test("400: the request is split until the bad record stands alone; only it is dropped, counted and reported (issue 10.3)", async () => {
		const records = someRecords(3);
		const bad = records.find((r: any) => r.type === "tool")!;
		const langfuseFake = fakeLangfuse([], { reject: span => span.spanId === bad.id, status: 400 });
		const { exporter, lines } = exporterWith(langfuseFake);
		for (const record of records) exporter.enqueue(record);
		await exporter.flush();
		const arrived = new Set(langfuseFake.accepted().map((s: any) => s.spanId));
		expect(arrived.size).toBe(distinctSpans(records) - 1);
		expect(arrived.has(bad.id)).toBe(false);
		expect(exporter.status.droppedSpans).toBe(1);
		expect(lines.filter(line => line.includes("HTTP 400")).length).toBe(1);
		expect((await exporter.spool.stats()).files).toBe(0);
	});

	test("401 stops sending, keeps spooling, and says to check the keys — once", async () => {
		const langfuseFake = fakeLangfuse([401]);
		const { exporter, lines } = exporterWith(langfuseFake);
		for (const record of someRecords()) exporter.enqueue(record);
		await exporter.flush();
		for (const record of someRecords()) exporter.enqueue(record);
		await exporter.flush();
		expect(langfuseFake.requests).toHaveLength(1);
		expect(exporter.status.blocked).toContain("HTTP 401");
		expect((await exporter.spool.stats()).files).toBe(2);
		expect(lines.filter(line => line.includes("check LANGFUSE_PUBLIC_KEY")).length).toBe(1);
	});

	test("a 20 MB tool output goes out in requests under 3.5 MB on the wire (16 MB inflated), shrunk with a marker, not dropped", async () => {
		const langfuseFake = fakeLangfuse();
		const { exporter } = exporterWith(langfuseFake, { LANGFUSE_MAX_FIELD_CHARS: "1000000" });
		const records = promptWithOutputs(Array.from({ length: 20 }, () => Array.from({ length: 100 }, () => "line ".repeat(2000))));
		for (const record of records) exporter.enqueue(record);
		await exporter.flush();
		expect(langfuseFake.spans()).toHaveLength(distinctSpans(records));
		for (const request of langfuseFake.requests) {
			expect((request.raw as Buffer).length).toBeLessThan(3_500_000);
			expect(JSON.stringify(request.body).length).toBeLessThanOrEqual(16_000_000);
		}
		expect(langfuseFake.requests.length).toBeGreaterThan(1);
	});

	test("a server without OTLP (404) makes auto switch to legacy ingestion, and remember it", async () => {
		const langfuseFake = fakeLangfuse([404, { status: 207, body: { successes: [], errors: [] } }]);
		const { exporter } = exporterWith(langfuseFake, { LANGFUSE_TRANSPORT: "auto" });
		for (const record of someRecords()) exporter.enqueue(record);
		await exporter.flush();
		expect(langfuseFake.requests.map(r => new URL(r.url).pathname)).toEqual(["/api/public/otel/v1/traces", "/api/public/ingestion"]);
		expect(exporter.status.transport).toBe("ingestion");
		const next = exporterWith(fakeLangfuse(), { LANGFUSE_TRANSPORT: "auto" }).exporter;
		expect(next.status.transport).toBe("ingestion");
	});

	test("with LANGFUSE_TRANSPORT=otel a 404 says how to fix it instead of switching", async () => {
		const { exporter, lines } = exporterWith(fakeLangfuse([404]));
		for (const record of someRecords()) exporter.enqueue(record);
		await exporter.flush();
		expect(exporter.status.blocked).toContain("LANGFUSE_TRANSPORT=ingestion");
		expect(lines.join()).toContain("no OTLP endpoint");
	});

	test("ingestion 207: failed retriable events are sent again, the rest reported and dropped", async () => {
		const records = someRecords();
		// what is sent: the latest version of each span (the trace's announcement is folded into its end)
		const events: any[] = [...new Map(records.map((r: any) => [`${r.traceId}:${r.id}`, r])).values()].flatMap(ingestionEvents);
		const retriable = events.filter((_: unknown, i: number) => i % 2 === 0).map((e: any) => ({ id: e.id, status: 500 }));
		const rejected = [{ id: events[1].id, status: 400, message: "bad" }];
		const langfuseFake = fakeLangfuse([{ status: 207, body: { successes: [], errors: [...retriable, ...rejected] } }, { status: 207, body: { successes: [], errors: [] } }]);
		const { exporter } = exporterWith(langfuseFake, { LANGFUSE_TRANSPORT: "ingestion" });
		for (const record of records) exporter.enqueue(record);
		await exporter.flush();
		await exporter.flush();
		expect(langfuseFake.requests).toHaveLength(2);
		const resent = langfuseFake.requests[1]!.body.batch.map((e: any) => e.id);
		for (const { id } of retriable) expect(resent).toContain(id);
		expect(exporter.status.droppedSpans).toBe(1);
		expect((await exporter.spool.stats()).files).toBe(0);
	});

	test("the next process replays what an earlier one left in the spool, oldest first, exactly once", async () => {
		const first = exporterWith(fakeLangfuse(["network-error"])).exporter;
		for (const record of someRecords(1, "older")) first.enqueue(record);
		await first.flush();
		for (const record of someRecords(1, "newer")) first.enqueue(record);
		first.exitSync(); // the process exits: claimed files are released, the queue written
		const langfuseFake = fakeLangfuse();
		const second = exporterWith(langfuseFake).exporter;
		second.start();
		await Bun.sleep(100);
		second.stop();
		const spans = langfuseFake.spans();
		expect(spans).toHaveLength(2 * SPANS_PER_PROMPT);
		expect(spans[0].attrs["session.id"]).toBe("older");
		expect(new Set(spans.map((s: any) => `${s.spanId}:${s.endTimeUnixNano}`)).size).toBe(2 * SPANS_PER_PROMPT);
		expect((await second.spool.stats()).files).toBe(0);
	});

	test("two processes replaying one spool never send the same file twice", async () => {
		const writer = exporterWith(fakeLangfuse(["network-error", "network-error", "network-error", "network-error"])).exporter;
		for (let i = 0; i < 4; i++) {
			for (const record of someRecords(1, `s${i}`)) writer.enqueue(record);
			await writer.flush();
		}
		writer.exitSync();
		const a = fakeLangfuse();
		const b = fakeLangfuse();
		const exporterA = exporterWith(a).exporter;
		const exporterB = exporterWith(b).exporter;
		exporterA.start();
		exporterB.start();
		await Bun.sleep(200);
		exporterA.stop();
		exporterB.stop();
		const ids = [...a.spans(), ...b.spans()].map((s: any) => `${s.spanId}:${s.endTimeUnixNano}`);
		expect(ids).toHaveLength(4 * SPANS_PER_PROMPT);
		expect(new Set(ids).size).toBe(4 * SPANS_PER_PROMPT);
	});

	test("a corrupt or truncated spool line is skipped, the rest delivered", async () => {
		const dir = path.join(tmp, "spool");
		fs.mkdirSync(dir, { recursive: true });
		const c = config();
		const { key } = internals.destinationOf(c);
		const good = someRecords().slice(0, 2).map((record: any) => encodeSpan(record));
		const header = JSON.stringify({ v: 2, wire: "otel", mode: "full", host: c.host, publicKey: c.publicKey });
		fs.writeFileSync(path.join(dir, `00001700000000000-1-abcdef01.${key}.jsonl`), `${header}\n${good[0]}\n{"traceId": "trunc\n${good[1]}\n`, { mode: 0o600 });
		const langfuseFake = fakeLangfuse();
		const { exporter } = exporterWith(langfuseFake);
		exporter.start();
		await until(() => langfuseFake.requests.length > 0);
		exporter.stop();
		expect(langfuseFake.spans()).toHaveLength(2);
	});

	test("over LANGFUSE_MAX_SPOOL_MB the oldest batches go first, with one warning", async () => {
		const { exporter, lines } = exporterWith(fakeLangfuse(Array(50).fill("network-error")), { LANGFUSE_MAX_SPOOL_MB: "0.05" });
		for (let i = 0; i < 10; i++) {
			const records: any[] = [];
			const recorder = recorderInto(records, { sessionId: `s${i}` });
			recorder.startPrompt(1, { input: "x" });
			recorder.endPrompt(2, { output: "y ".repeat(10_000) });
			for (const record of records) exporter.enqueue(record);
			await exporter.flush();
		}
		const stats = await exporter.spool.stats();
		expect(stats.bytes).toBeLessThanOrEqual(0.05 * 1024 * 1024);
		expect(lines.filter(line => line.includes("LANGFUSE_MAX_SPOOL_MB")).length).toBeGreaterThanOrEqual(1);
	});

	test("files older than LANGFUSE_RETENTION_DAYS are removed, not sent", async () => {
		const dir = path.join(tmp, "spool");
		fs.mkdirSync(dir, { recursive: true });
		const file = path.join(dir, "00001600000000000-1-abcdef01.jsonl");
		fs.writeFileSync(file, `${JSON.stringify(someRecords()[0])}\n`);
		const old = new Date(Date.now() - 8 * 86_400_000);
		fs.utimesSync(file, old, old);
		const langfuseFake = fakeLangfuse();
		const { exporter } = exporterWith(langfuseFake);
		exporter.start();
		await Bun.sleep(100);
		exporter.stop();
		expect(langfuseFake.requests).toHaveLength(0);
		expect(fs.existsSync(file)).toBe(false);
	});

	test("shutdown ends at its deadline even against a black hole, the batch on disk", async () => {
		let aborted = false;
		const blackHole = (_url: string, init: RequestInit) =>
			new Promise<Response>((_resolve, reject) => init.signal?.addEventListener("abort", () => ((aborted = true), reject(new Error("aborted")))));
		const exporter = new Exporter(config(), noRedact, new Logger(noRedact, false, () => {}), { fetch: blackHole });
		for (const record of someRecords()) exporter.enqueue(record);
		// the black hole never answers: shutdown resolves at its deadline, which also aborts the request
		await exporter.shutdown(500);
		await until(() => aborted);
		expect((await exporter.spool.stats()).files).toBe(1);
	});
});

// ════════════════════════════════════════════════════════════════════════════════════════════════
describe("transport: per-project spool, status handling, encode once, gzip, slices (issues 10, 11)", () => {
	function someRecords(count = 1, sessionId = "s") {
		const records: any[] = [];
		const recorder = recorderInto(records, { sessionId });
		for (let i = 0; i < count; i++) recordOnePrompt(recorder, 1000 + i * 1000);
		return records;
	}
	const spoolDir = () => path.join(tmp, "spool");
	const spoolFiles = () => fs.readdirSync(spoolDir()).filter(name => /\.jsonl(\.\d+)?$/.test(name));
	const spoolText = () => spoolFiles().map(name => fs.readFileSync(path.join(spoolDir(), name), "utf8")).join("\n");

	test("10.1 a batch spooled for project A is sent only by a process with A's host and key, never to B", async () => {
		const a = exporterWith(fakeLangfuse(["network-error"]), { LANGFUSE_PUBLIC_KEY: "pk-lf-project-a" }).exporter;
		for (const record of someRecords(1, "session-of-a")) a.enqueue(record);
		await a.flush();
		a.exitSync();
		expect(spoolText()).not.toContain(KEYS.LANGFUSE_SECRET_KEY);
		// project B (other key), then project A on another host: neither sends A's batch
		for (const overrides of <Record<string, string>[]>[{ LANGFUSE_PUBLIC_KEY: "pk-lf-project-b" }, { LANGFUSE_PUBLIC_KEY: "pk-lf-project-a", LANGFUSE_HOST: "http://other.test" }]) {
			const fake = fakeLangfuse();
			const other = exporterWith(fake, overrides).exporter;
			await other.sendSpool(Date.now() + 5000);
			expect(fake.requests).toHaveLength(0);
			other.exitSync();
		}
		expect(spoolFiles()).toHaveLength(1);
		const fakeA = fakeLangfuse();
		const again = exporterWith(fakeA, { LANGFUSE_PUBLIC_KEY: "pk-lf-project-a" }).exporter;
		await again.sendSpool(Date.now() + 5000);
		expect(fakeA.spans().map((s: any) => s.attrs["session.id"])).toEqual(Array(SPANS_PER_PROMPT).fill("session-of-a"));
		expect(fakeA.requests[0]!.headers.Authorization).toContain(Buffer.from("pk-lf-project-a:").toString("base64").slice(0, 16));
		expect(spoolFiles()).toHaveLength(0);
	});

	test("10.1 files of langfuse.ts 0.1 (no destination recorded) are never sent by an agent, only by `flush` with the user's keys", async () => {
		fs.mkdirSync(spoolDir(), { recursive: true });
		const records = someRecords(1, "old-version");
		const prepared = records.map((r: any) => prepareRecord(r, { redact: noRedact, maxFieldChars: 1000, budgetChars: 100_000, exportMode: "full" }));
		fs.writeFileSync(path.join(spoolDir(), "00001700000000000-1-abcdef09.jsonl"), prepared.map((r: any) => JSON.stringify(r)).join("\n") + "\n");
		const agentFake = fakeLangfuse();
		const agent = exporterWith(agentFake).exporter;
		await agent.sendSpool(Date.now() + 5000);
		expect(agentFake.requests).toHaveLength(0);
		agent.exitSync();
		const flushFake = fakeLangfuse();
		const flush = exporterWith(flushFake).exporter;
		await flush.sendSpool(Date.now() + 5000, { legacy: true });
		expect(flushFake.spans().map((s: any) => s.attrs["session.id"])).toEqual(Array(SPANS_PER_PROMPT).fill("old-version"));
		expect(spoolFiles()).toEqual([]);
	});

	test("10.1 a stricter LANGFUSE_EXPORT_MODE applies to batches spooled before: metadata_only sends no earlier content", async () => {
		const full = exporterWith(fakeLangfuse(["network-error"])).exporter;
		for (const record of someRecords()) full.enqueue(record);
		await full.flush();
		full.exitSync();
		expect(spoolText()).toContain("Fix the failing test");
		const fake = fakeLangfuse();
		const strict = exporterWith(fake, { LANGFUSE_EXPORT_MODE: "metadata_only" }).exporter;
		await strict.sendSpool(Date.now() + 5000);
		expect(fake.spans()).toHaveLength(SPANS_PER_PROMPT);
		const sent = JSON.stringify(fake.requests.map(request => request.body));
		for (const content of ["Fix the failing test", "calling bash", "bun test", "1 fail", "exit code 1"]) expect(sent).not.toContain(content);
		expect(fake.spans().find((s: any) => s.attrs["langfuse.observation.type"] === "tool").attrs["langfuse.observation.status_message"]).toBe("tool failed");
	});

	test("10.2 a record that cannot be encoded (NaN time) is dropped alone and counted; the rest of its queue goes", async () => {
		const fake = fakeLangfuse();
		const { exporter } = exporterWith(fake);
		const records = someRecords();
		const broken = { ...records.find((r: any) => r.type === "generation"), id: "0123456789abcdef", endMs: Number.NaN, emissionId: "broken" };
		for (const record of [...records, broken]) exporter.enqueue(record);
		await exporter.flush();
		expect(fake.spans()).toHaveLength(SPANS_PER_PROMPT);
		expect(exporter.status).toMatchObject({ sentSpans: SPANS_PER_PROMPT, droppedSpans: 1, queued: 0, waitingBatches: 0 });
	});

	test("10.4 any other status (431) is retried with the data kept, never dropped", async () => {
		const fake = fakeLangfuse([431]);
		const { exporter } = exporterWith(fake);
		for (const record of someRecords()) exporter.enqueue(record);
		await exporter.flush();
		expect(exporter.status.droppedSpans).toBe(0);
		expect(exporter.status.lastError).toBe("HTTP 431");
		expect(spoolFiles()).toHaveLength(1);
		await exporter.flush();
		expect(fake.accepted()).toHaveLength(SPANS_PER_PROMPT);
		expect(spoolFiles()).toHaveLength(0);
	});

	test("10.5 a redirect is never followed: one line names Location and the LANGFUSE_HOST to set; data stays spooled", async () => {
		const location = "https://langfuse.example.com/api/public/otel/v1/traces";
		const fake = fakeLangfuse([{ status: 301, headers: { location } }]);
		const inits: RequestInit[] = [];
		const { exporter, lines } = exporterWith({ ...fake, fetch: (url: string, init: RequestInit) => (inits.push(init), fake.fetch(url, init)) });
		for (const record of someRecords()) exporter.enqueue(record);
		await exporter.flush();
		for (const record of someRecords(1, "later")) exporter.enqueue(record);
		await exporter.flush();
		expect(inits.map(init => init.redirect)).toEqual(["manual"]);
		const said = lines.filter(line => line.includes("redirect"));
		expect(said).toHaveLength(1);
		expect(said[0]).toContain(location);
		expect(said[0]).toContain("LANGFUSE_HOST=https://langfuse.example.com");
		expect(said[0]!.split("\n")).toHaveLength(1);
		expect(exporter.status.droppedSpans).toBe(0);
		expect(spoolFiles()).toHaveLength(2);
	});

	test("413 splits the request until each part is accepted; nothing is dropped", async () => {
		const fake = fakeLangfuse([], { maxSpans: 3 });
		const { exporter } = exporterWith(fake);
		const records = someRecords(4);
		for (const record of records) exporter.enqueue(record);
		await exporter.flush();
		expect(new Set(fake.accepted().map((s: any) => s.spanId)).size).toBe(distinctSpans(records));
		expect(fake.accepted()).toHaveLength(distinctSpans(records));
		expect(exporter.status.droppedSpans).toBe(0);
	});

	test("a request never carries two versions of one span: the latest wins", async () => {
		const fake = fakeLangfuse();
		const { exporter } = exporterWith(fake);
		const records = someRecords();
		for (const record of records) exporter.enqueue(record);
		await exporter.flush();
		const root = records.filter((r: any) => !r.parentId);
		expect(root.length).toBe(2); // announced, then complete
		const sent = fake.spans().filter((s: any) => s.spanId === root[0].id);
		expect(sent).toHaveLength(1);
		expect(sent[0].endTimeUnixNano).toBe(`${root[1].endMs}000000`);
	});

	test("a busy session's spans share few requests: 12 MB of JSON that gzip shrinks go in one, under 3.5 MB on the wire", async () => {
		const fake = fakeLangfuse();
		const { exporter } = exporterWith(fake, { LANGFUSE_MAX_FIELD_CHARS: "1000000" });
		const records = promptWithOutputs(Array.from({ length: 40 }, (_, i) => `step ${i}: ${"compiling module ok\n".repeat(15_000)}`));
		for (const record of records) exporter.enqueue(record);
		await exporter.flush();
		expect(fake.spans()).toHaveLength(distinctSpans(records));
		const inflated = fake.requests.map(request => JSON.stringify(request.body).length);
		expect(inflated.reduce((sum, size) => sum + size, 0)).toBeGreaterThan(12_000_000);
		expect(fake.requests.length).toBe(1);
		expect((fake.requests[0]!.raw as Buffer).length).toBeLessThan(3_500_000);
	});

	test("a multi-request batch that fails half-way resends only the requests not yet confirmed", async () => {
		const fake = fakeLangfuse([200, 500]);
		const { exporter } = exporterWith(fake, { LANGFUSE_MAX_FIELD_CHARS: "1000000" });
		// random words: 5.4 MB that gzip cannot fit into one 3.5 MB request
		const words = (chars: number) => Buffer.from(randomBytes(chars).map(byte => (byte % 7 === 0 ? 32 : 97 + (byte % 16)))).toString("latin1");
		const records = promptWithOutputs(Array.from({ length: 6 }, () => words(900_000)));
		for (const record of records) exporter.enqueue(record);
		await exporter.flush();
		expect(fake.requests.length).toBe(2);
		for (const request of fake.requests) expect((request.raw as Buffer).length).toBeLessThan(3_500_000);
		const first = new Set(fake.accepted().map((s: any) => s.spanId));
		await exporter.flush();
		const resent = fake.requests.slice(2).flatMap(request => request.body.resourceSpans[0].scopeSpans[0].spans.map((s: any) => s.spanId));
		expect(resent.filter((id: string) => first.has(id))).toEqual([]);
		expect(new Set(fake.accepted().map((s: any) => s.spanId)).size).toBe(distinctSpans(records));
		expect(spoolFiles()).toHaveLength(0);
	});

	test("encode once: the spooled lines are byte for byte the spans sent; fetch gets bytes, gzip, ingestion version 4", async () => {
		const fake = fakeLangfuse(["network-error"]);
		const { exporter } = exporterWith(fake);
		for (const record of someRecords()) exporter.enqueue(record);
		await exporter.flush();
		const [header, ...lines] = spoolText().trim().split("\n");
		expect(JSON.parse(header!)).toMatchObject({ v: 2, wire: "otel", mode: "full", host: "http://langfuse.test", publicKey: KEYS.LANGFUSE_PUBLIC_KEY });
		await exporter.flush();
		const last = fake.requests.at(-1)!;
		expect(typeof last.raw).not.toBe("string");
		expect(last.headers["Content-Encoding"]).toBe("gzip");
		expect(last.headers["x-langfuse-ingestion-version"]).toBe("4");
		const text = decodeBody({ body: last.raw as BodyInit, headers: last.headers });
		expect(text).toContain(`"spans":[${lines.join(",")}]`);
		expect(spoolFiles()).toHaveLength(0);
	});

	test("gzip refused (415): the same request goes once plain, and plain is remembered for this host", async () => {
		const fake = fakeLangfuse([], { refuseGzip: true });
		const { exporter, lines } = exporterWith(fake);
		for (const record of someRecords()) exporter.enqueue(record);
		await exporter.flush();
		for (const record of someRecords(1, "next")) exporter.enqueue(record);
		await exporter.flush();
		expect(fake.requests.map(request => request.headers["Content-Encoding"] ?? "plain")).toEqual(["gzip", "plain", "plain"]);
		expect(fake.accepted()).toHaveLength(2 * SPANS_PER_PROMPT);
		expect(lines.filter(line => line.includes("gzip"))).toHaveLength(1);
		const nextProcess = exporterWith(fake).exporter;
		for (const record of someRecords(1, "third")) nextProcess.enqueue(record);
		await nextProcess.flush();
		expect(fake.requests.at(-1)!.headers["Content-Encoding"]).toBeUndefined();
	});

	test("gzip refused for a batch too big to go plain: it is halved until each half fits a plain request, and nothing is lost", async () => {
		const fake = fakeLangfuse([], { refuseGzip: true });
		const { exporter } = exporterWith(fake, { LANGFUSE_MAX_FIELD_CHARS: "1000000" });
		const records = promptWithOutputs(Array.from({ length: 16 }, (_, i) => `step ${i}: ${"compiling module ok\n".repeat(25_000)}`));
		for (const record of records) exporter.enqueue(record);
		await exporter.flush();
		expect(new Set(fake.accepted().map((span: any) => span.spanId)).size).toBe(distinctSpans(records));
		const plain = fake.requests.filter(request => request.status !== 415);
		expect(plain.every(request => request.headers["Content-Encoding"] === undefined && (request.raw as Buffer).length < 3_500_000)).toBe(true);
		expect(plain.length).toBeGreaterThan(2);
	});

	test("a batch Langfuse confirms before its write is due never touches the disk; an unanswered one is written meanwhile", async () => {
		const fake = fakeLangfuse();
		const seen: string[][] = [];
		const { exporter } = exporterWith({ ...fake, fetch: (url: string, init: RequestInit) => (seen.push(spoolFiles()), fake.fetch(url, init)) });
		const created: string[] = [];
		const watcher = fs.watch(spoolDir(), (_event, name) => name && created.push(String(name)));
		for (const record of someRecords()) exporter.enqueue(record);
		await exporter.flush();
		await new Promise(resolve => setTimeout(resolve, 300)); // past the write's due time
		watcher.close();
		expect(seen).toEqual([[]]);
		expect(created).toEqual([]);
		expect(spoolFiles()).toEqual([]);

		let answer: (response: Response) => void = () => {};
		const slow = exporterWith({ ...fake, fetch: () => new Promise<Response>(resolve => (answer = resolve)) }).exporter;
		for (const record of someRecords(1, "slow")) slow.enqueue(record);
		const flushed = slow.flush();
		await until(() => spoolFiles().length === 1); // written while the request is still unanswered
		answer(new Response("{}", { status: 200 }));
		await flushed;
		await until(() => spoolFiles().length === 0); // confirmed: removed
	});

	test("hooks only record: flush() does nothing before it yields, and 10k records are encoded in slices a timer gets between", async () => {
		const fake = fakeLangfuse();
		const { exporter } = exporterWith(fake, { LANGFUSE_MAX_QUEUE: "100000" });
		const records = someRecords(2000);
		for (const record of records) exporter.enqueue(record);
		expect(records.length).toBe(10_000);
		let timerFired = false;
		let flushEnded = false;
		setTimeout(() => (timerFired = true), 0);
		const flushing = exporter.flush().then(() => (flushEnded = true));
		expect(exporter.status.queued).toBe(10_000); // nothing ran inline
		let firedBeforeEnd = false;
		await new Promise<void>(resolve => setTimeout(() => ((firedBeforeEnd = !flushEnded), resolve()), 0));
		await flushing;
		expect(timerFired).toBe(true);
		expect(firedBeforeEnd).toBe(true);
		expect(fake.accepted()).toHaveLength(distinctSpans(records));
	});
});

// ════════════════════════════════════════════════════════════════════════════════════════════════
describe("omp/pi adapter: the host is never hurt", () => {
	test("the file imports only node: builtins and never says import.meta: pi's jiti then loads it as a plain function, not a native ES module (twice the import cost)", () => {
		const source = fs.readFileSync(path.join(import.meta.dir, "langfuse.ts"), "utf8");
		const code = source
			.split("\n")
			.filter(line => !/^\s*(\/\/|\*|\/\*)/.test(line))
			.join("\n");
		expect(code.match(/\bimport\.meta\b/g) ?? []).toEqual([]);
		const imports = [...source.matchAll(/^import .* from "([^"]+)";$/gm)].map(match => match[1]);
		expect(imports.length).toBeGreaterThan(0);
		expect(imports.filter(spec => !spec!.startsWith("node:"))).toEqual([]);
	});

	function fakeHost() {
		const handlers = new Map<string, ((event: unknown, ctx: unknown) => unknown)[]>();
		const commands = new Map<string, any>();
		const pi = {
			on: (name: string, handler: any) => handlers.set(name, [...(handlers.get(name) ?? []), handler]),
			registerCommand: (name: string, options: any) => commands.set(name, options),
		};
		const emit = (name: string, event: unknown, ctx: unknown) => (handlers.get(name) ?? []).map(handler => handler(event, ctx));
		return { pi, handlers, commands, emit };
	}

	function fakeCtx(sessionId = "01a2-session", hasUI = false) {
		const status = new Map<string, string | undefined>();
		const notes: string[] = [];
		return {
			status,
			notes,
			hasUI,
			cwd: "/work/project",
			mode: hasUI ? "tui" : "print",
			model: { id: "mock-model", provider: "mock", api: "openai-completions" },
			sessionManager: { getSessionId: () => sessionId, getSessionFile: () => `/sessions/${sessionId}.jsonl`, getHeader: () => ({}) },
			getContextUsage: () => ({ tokens: 1200, contextWindow: 128000, percent: 0.9375 }),
			ui: { setStatus: (key: string, text: string | undefined) => status.set(key, text), notify: (text: string) => notes.push(text) },
		};
	}

	function tracedHost(env: Record<string, string> = {}, answers: Answer[] = []) {
		const langfuseFake = fakeLangfuse(answers);
		const lines: string[] = [];
		const runtime = createRuntime(
			{ ...KEYS, LANGFUSE_HOST: "http://langfuse.test", LANGFUSE_SPOOL_DIR: path.join(tmp, "spool"), LANGFUSE_FLUSH_MS: "600000", ...env },
			{ fetch: langfuseFake.fetch, write: (line: string) => lines.push(line), exitHook: false, backoffMs: () => 0 },
		);
		const host = fakeHost();
		attachPiHost(host.pi, runtime);
		return { ...host, runtime, langfuseFake, lines };
	}

	const assistant = (text: string, extra: Record<string, unknown> = {}) => ({
		role: "assistant",
		content: [{ type: "text", text }],
		model: "mock-model",
		provider: "mock",
		usage: { input: 1000, output: 20, cacheRead: 200, cacheWrite: 0, totalTokens: 1220, cost: { input: 0.003, output: 0.0003, cacheRead: 0.00006, cacheWrite: 0, total: 0.00336 } },
		stopReason: "stop",
		...extra,
	});

	async function onePrompt(host: ReturnType<typeof tracedHost>, ctx = fakeCtx()) {
		host.emit("session_start", {}, ctx);
		host.emit("before_agent_start", { prompt: "List the files" }, ctx);
		host.emit("agent_start", {}, ctx);
		host.emit("turn_start", { turnIndex: 0 }, ctx);
		expect(host.emit("before_provider_request", { payload: { model: "mock-model", messages: [{ role: "user", content: "List the files" }], temperature: 0.2 } }, ctx)).toEqual([undefined]);
		host.emit("message_update", {}, ctx);
		host.emit("message_end", { message: assistant("Calling ls", { stopReason: "toolUse" }) }, ctx);
		expect(host.emit("tool_call", { toolCallId: "call_1", toolName: "bash", input: { command: "ls" } }, ctx)).toEqual([undefined]);
		host.emit("tool_execution_start", { toolCallId: "call_1", toolName: "bash", args: { command: "ls" } }, ctx);
		host.emit("tool_result", { toolCallId: "call_1", toolName: "bash", content: [{ type: "text", text: "a.ts\nb.ts" }], isError: false }, ctx);
		host.emit("tool_execution_end", { toolCallId: "call_1", toolName: "bash", result: { content: [] }, isError: false }, ctx);
		host.emit("turn_end", { turnIndex: 0, message: assistant("Calling ls", { stopReason: "toolUse" }), toolResults: [{}] }, ctx);
		host.emit("agent_end", { messages: [assistant("Two files: a.ts and b.ts")] }, ctx);
		await Promise.all(host.emit("session_shutdown", {}, ctx));
	}

	test("a prompt arrives as one trace with its turn, LLM call and tool, flushed at shutdown", async () => {
		const host = tracedHost();
		await onePrompt(host);
		const spans = [...new Map(host.langfuseFake.spans().map((s: any) => [s.spanId, s])).values()] as any[];
		expect(spans.map(s => `${s.attrs["langfuse.observation.type"]}:${s.name}`).sort()).toEqual(["agent:List the files", "generation:mock-model", "span:turn 0", "tool:bash"]);
		const generation = spans.find(s => s.name === "mock-model");
		expect(JSON.parse(generation.attrs["langfuse.observation.model.parameters"])).toEqual({ temperature: 0.2 });
		expect(JSON.parse(generation.attrs["langfuse.observation.usage_details"])).toEqual({ input: 1000, input_cache_read: 200, output: 20, total: 1220 });
		const turn = spans.find(s => s.name === "turn 0");
		expect(JSON.parse(turn.attrs["langfuse.observation.metadata"])).toMatchObject({ turnIndex: 0, contextTokens: 1200, contextPercent: 0.9 });
		const root = spans.find(s => !s.parentSpanId);
		expect(root.attrs["langfuse.trace.output"]).toBe("Two files: a.ts and b.ts");
		expect(spans.find(s => s.name === "bash").attrs["langfuse.observation.output"]).toBe("a.ts\nb.ts");
	});

	test("garbage events and broken contexts never throw into the host", async () => {
		const host = tracedHost();
		const hostile = {
			get sessionManager(): never {
				throw new Error("no session manager");
			},
		};
		const throwingPayload = {
			get payload(): never {
				throw new Error("payload getter");
			},
		};
		for (const [name] of host.handlers) {
			for (const [event, ctx] of [
				[undefined, undefined],
				[null, fakeCtx()],
				[42, fakeCtx()],
				[throwingPayload, fakeCtx()],
				[{ message: { role: "assistant", content: "not an array", usage: "??" } }, fakeCtx()],
				[{}, hostile],
			]) {
				const results = await Promise.all(host.emit(name, event, ctx));
				for (const result of results) expect(result).toBeUndefined();
			}
		}
	});

	test("a host auto-retry stays inside the same trace", async () => {
		const host = tracedHost();
		const ctx = fakeCtx();
		host.emit("before_agent_start", { prompt: "flaky" }, ctx);
		host.emit("agent_start", {}, ctx);
		host.emit("message_end", { message: assistant("", { stopReason: "error", errorMessage: "500 Internal Server Error" }) }, ctx);
		host.emit("auto_retry_start", { attempt: 1, maxAttempts: 3, delayMs: 10, errorMessage: "500" }, ctx);
		host.emit("agent_end", { messages: [], willContinue: true }, ctx);
		host.emit("agent_start", {}, ctx);
		host.emit("message_end", { message: assistant("recovered") }, ctx);
		host.emit("auto_retry_end", { success: true, attempt: 1 }, ctx);
		host.emit("agent_end", { messages: [assistant("recovered")] }, ctx);
		await Promise.all(host.emit("session_shutdown", {}, ctx));
		const spans = host.langfuseFake.spans();
		expect(new Set(spans.map((s: any) => s.traceId)).size).toBe(1);
		const failed = spans.find((s: any) => s.attrs["langfuse.observation.level"] === "ERROR");
		expect(failed.attrs["langfuse.observation.status_message"]).toBe("500 Internal Server Error");
		expect(spans.some((s: any) => s.name === "auto-retry")).toBe(true);
	});

	test("a sampled-out session sends nothing", async () => {
		const host = tracedHost({ LANGFUSE_SAMPLE_RATE: "0" });
		await onePrompt(host);
		await host.runtime.exporter!.flush();
		expect(host.langfuseFake.requests).toHaveLength(0);
		expect(host.runtime.exporter!.status).toMatchObject({ queued: 0, waitingBatches: 0, sentSpans: 0 });
		expect(fs.readdirSync(path.join(tmp, "spool")).filter(name => name.includes(".jsonl"))).toEqual([]);
	});

	test("the status bar shows tracing, and clears at shutdown", async () => {
		const host = tracedHost();
		const ctx = fakeCtx("ui-session", true);
		host.emit("session_start", {}, ctx);
		expect(ctx.status.get("langfuse")).toBe("langfuse ●");
		await onePrompt(host, ctx);
		expect(ctx.status.get("langfuse")).toBeUndefined();
	});

	test("the status bar shows a failing export", async () => {
		const host = tracedHost({}, [401]);
		const ctx = fakeCtx("ui-session", true);
		host.emit("session_start", {}, ctx);
		host.emit("agent_start", {}, ctx);
		host.emit("agent_end", { messages: [] }, ctx);
		await host.runtime.exporter!.flush();
		expect(ctx.status.get("langfuse")).toBe("langfuse ✗ export blocked (/langfuse)");
		expect(ctx.notes.join()).toContain("HTTP 401");
	});

	test("/langfuse reports status; /langfuse off pauses this session", async () => {
		const host = tracedHost();
		const ctx = fakeCtx("cmd-session", true);
		host.emit("session_start", {}, ctx);
		const command = host.commands.get("langfuse");
		await command.handler("", ctx);
		expect(ctx.notes.at(-1)).toContain("Langfuse tracing on → http://langfuse.test (pk-lf-11…5555");
		expect(ctx.notes.at(-1)).not.toContain(KEYS.LANGFUSE_SECRET_KEY);
		await command.handler("off", ctx);
		host.emit("agent_start", {}, ctx);
		host.emit("agent_end", { messages: [] }, ctx);
		await host.runtime.exporter!.flush();
		expect(host.langfuseFake.requests).toHaveLength(0);
		expect(ctx.status.get("langfuse")).toBe("langfuse ○ paused");
	});

	test("tracing off: the factory subscribes and stays silent", async () => {
		const lines: string[] = [];
		const runtime = createRuntime({}, { write: (line: string) => lines.push(line), exitHook: false });
		expect(lines).toEqual(["[langfuse] tracing off: LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY not set"]);
		const host = fakeHost();
		attachPiHost(host.pi, runtime);
		expect(host.handlers.size).toBeGreaterThan(10);
		for (const [name] of host.handlers) expect(host.emit(name, {}, fakeCtx())).toEqual([undefined]);
		expect(lines).toHaveLength(1);
	});
});

// ════════════════════════════════════════════════════════════════════════════════════════════════
describe("recorded real omp and pi sessions become the traces a user expects", () => {
	const fixture = (name: string) => path.join(import.meta.dir, "test/fixtures", name);

	/** Replays a recording through the adapter; returns every span by id, last version wins. */
	async function replayed(name: string, env: Record<string, string> = {}) {
		const langfuseFake = fakeLangfuse();
		const runtime = createRuntime(
			{ ...KEYS, LANGFUSE_HOST: "http://langfuse.test", LANGFUSE_SPOOL_DIR: path.join(tmp, "spool"), LANGFUSE_FLUSH_MS: "600000", ...env },
			{ fetch: langfuseFake.fetch, write: () => {}, exitHook: false },
		);
		await replay(readRecording(fixture(name)), pi => attachPiHost(pi, runtime));
		await runtime.exporter!.flush();
		runtime.exporter!.stop();
		const spans = [...new Map(langfuseFake.spans().map((span: any) => [span.spanId, span])).values()] as any[];
		const ofType = (type: string) => spans.filter(span => span.attrs["langfuse.observation.type"] === type);
		const json = (span: any, key: string) => JSON.parse(span.attrs[key] ?? "{}");
		return { spans, ofType, json };
	}

	for (const host of ["omp", "pi"]) {
		test(`${host}: two parallel tools, one failing — one trace, every LLM call and tool, the host's exact token and cost sums`, async () => {
			const { spans, ofType, json } = await replayed(`${host}-two-tools.jsonl`);
			const session = readAgentSession(fixture(`${host}-two-tools.session.jsonl`));
			expect(new Set(spans.map(span => span.traceId)).size).toBe(1);
			for (const span of spans) expect(span.attrs["session.id"]).toBe(session.id);
			const generations = ofType("generation");
			expect(generations).toHaveLength(session.assistants.length);
			const tools = ofType("tool");
			expect(tools).toHaveLength(2);
			expect(tools.filter(tool => tool.attrs["langfuse.observation.level"] === "ERROR")).toHaveLength(1);
			const hostSums = sumUsage(session.assistants.map(assistant => assistant.usage));
			const usage = generations.map(span => json(span, "langfuse.observation.usage_details"));
			expect(usage.reduce((sum, u) => sum + (u.input ?? 0), 0)).toBe(hostSums.input);
			expect(usage.reduce((sum, u) => sum + (u.output ?? 0), 0)).toBe(hostSums.output);
			expect(usage.reduce((sum, u) => sum + (u.input_cache_read ?? 0), 0)).toBe(hostSums.cacheRead);
			const cost = generations.reduce((sum, span) => sum + json(span, "langfuse.observation.cost_details").total, 0);
			expect(cost).toBeCloseTo(hostSums.cost.total, 12);
		});

		test(`${host}: every LLM call and tool sits under the turn it belongs to`, async () => {
			const { ofType } = await replayed(`${host}-two-tools.jsonl`);
			const turns = ofType("span").filter(span => span.name.startsWith("turn"));
			expect(turns.map(turn => turn.name)).toEqual(["turn 0", "turn 1"]);
			const [first, second] = ofType("generation").sort((a, b) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1));
			expect(first.parentSpanId).toBe(turns[0].spanId);
			expect(second.parentSpanId).toBe(turns[1].spanId); // pi announces it before turn 1 starts
			for (const tool of ofType("tool")) expect(tool.parentSpanId).toBe(turns[0].spanId);
		});
	}

	test("omp retry: failed calls are ERROR with the provider's message, retries are events, all in one trace", async () => {
		const { spans, ofType } = await replayed("omp-retry.jsonl");
		expect(new Set(spans.map(span => span.traceId)).size).toBe(1);
		const failed = ofType("generation").filter(span => span.attrs["langfuse.observation.level"] === "ERROR");
		expect(failed.length).toBeGreaterThanOrEqual(1);
		expect(failed[0].attrs["langfuse.observation.status_message"]).toMatch(/500/);
		expect(ofType("event").map(event => event.name)).toContain("auto-retry");
		const root = spans.find(span => !span.parentSpanId);
		expect(root.attrs["langfuse.trace.output"]).toBeString();
	});

	test("omp: two prompts in one session are two traces in that session", async () => {
		const { spans } = await replayed("omp-two-prompts.jsonl");
		const roots = spans.filter(span => !span.parentSpanId);
		expect(roots).toHaveLength(2);
		expect(new Set(roots.map(root => root.attrs["session.id"])).size).toBe(1);
		expect(roots.map(root => root.attrs["langfuse.trace.name"]).sort()).toEqual(["ONE more: run echo hi", "Run two commands"]);
	});

	test("omp: LANGFUSE_TRACE_GROUPING=session makes the session one trace with a span per prompt", async () => {
		const { spans, ofType } = await replayed("omp-two-prompts.jsonl", { LANGFUSE_TRACE_GROUPING: "session" });
		expect(new Set(spans.map(span => span.traceId)).size).toBe(1);
		expect(ofType("chain").map(chain => chain.name).sort()).toEqual(["ONE more: run echo hi", "Run two commands"]);
		const root = spans.find(span => !span.parentSpanId);
		expect(root.attrs["langfuse.trace.output"]).toBeString();
	});

	test("omp: a compaction is a span with the tokens before and after", async () => {
		const { ofType, json } = await replayed("omp-compaction.jsonl");
		const compactions = ofType("span").filter(span => span.name === "compaction");
		expect(compactions.length).toBeGreaterThanOrEqual(1);
		expect(json(compactions[0], "langfuse.observation.metadata").tokensBefore).toBeGreaterThan(0);
	});

	test("omp: a subagent is its own session, tagged, linked to its parent session", async () => {
		const { spans, json } = await replayed("omp-subagent.jsonl");
		const roots = spans.filter(span => !span.parentSpanId);
		const sessions = new Set(roots.map(root => root.attrs["session.id"]));
		expect(sessions.size).toBe(2);
		const child = roots.find(root => json(root, "langfuse.trace.metadata").parentSessionId);
		const parent = roots.find(root => root !== child);
		expect(json(child, "langfuse.trace.metadata").parentSessionId).toBe(parent.attrs["session.id"]);
		expect(child.attrs["langfuse.trace.tags"]).toContain("subagent");
	});
});

// ════════════════════════════════════════════════════════════════════════════════════════════════
// Issue 9: what Langfuse's own server stores and its UI shows. Each property asserted on the bodies.
describe("what Langfuse stores: trace attributes, versions, renames, chat, usage", () => {
	const { chatRequest, chatMessagesOf, chatOutput, prepareChat, ChatCache, SanitizedTexts, usageDetails } = internals as any;
	const attrsOf = (record: any) => decodeAttributes(JSON.parse(encodeSpan(record)).attributes) as Record<string, any>;
	const prepareOptions = { redact: noRedact, maxFieldChars: 64_000, budgetChars: 1_000_000, exportMode: "full" as const };
	/** Langfuse v3 merges a trace's updates in the start-time order of the spans carrying them; ties in file order. */
	const v3TraceName = (records: any[], reverse: boolean) => {
		const carriers = records.map(attrsOf).map((attrs, index) => ({ attrs, start: records[index].startMs, index })).filter(c => c.attrs["langfuse.trace.name"]);
		const ordered = [...carriers].sort((a, b) => a.start - b.start || (reverse ? b.index - a.index : a.index - b.index));
		return ordered.at(-1)!.attrs["langfuse.trace.name"];
	};

	test("every span carries the trace's name, tags, user, session, environment and release (v4 reads each row's own)", () => {
		const records: any[] = [];
		recordOnePrompt(recorderInto(records, { environment: "dev", release: "v1", tags: ["omp", "team-a"] }));
		expect(records.length).toBe(RECORDS_PER_PROMPT);
		for (const record of records) {
			const attrs = attrsOf(record);
			expect(attrs["langfuse.trace.name"]).toBe("Fix the failing test");
			expect(attrs["langfuse.trace.tags"]).toEqual(["omp", "team-a"]);
			expect(attrs["user.id"]).toBe("alice");
			expect(attrs["session.id"]).toBe("session-1");
			expect(attrs["langfuse.environment"]).toBe("dev");
			expect(attrs["langfuse.release"]).toBe("v1");
		}
	});

	test("the trace name and tags every span carries are redacted like the trace's own", () => {
		const records: any[] = [];
		const recorder = recorderInto(records, { tags: ["omp", "tag-sk-secret"] });
		recorder.startPrompt(1000, { input: "deploy with sk-secret now" });
		recorder.startTool("tool:1", 1100, { name: "bash" });
		recorder.endTool("tool:1", 1200, { output: "ok" });
		recorder.endPrompt(1300);
		const redact = (text: string) => text.replaceAll("sk-secret", "[REDACTED]");
		for (const record of records) {
			const prepared = prepareRecord(record, { ...prepareOptions, redact });
			expect(encodeSpan(prepared)).not.toContain("sk-secret");
			expect(attrsOf(prepared)["langfuse.trace.name"]).toBe("deploy with [REDACTED] now");
		}
	});

	test("a late rename (OpenCode's title after the answer) reaches every span, and wins in v3 in either file order", () => {
		const records: any[] = [];
		const recorder = recorderInto(records);
		recordOnePrompt(recorder);
		recorder.rename("Mock session title", { includeLast: true });
		const latest = [...new Map(records.map(record => [record.id, record])).values()];
		for (const record of latest) expect(attrsOf(record)["langfuse.trace.name"]).toBe("Mock session title");
		expect(v3TraceName(records, false)).toBe("Mock session title");
		expect(v3TraceName(records, true)).toBe("Mock session title");
		// the trace was named at prompt start already: a crash mid-prompt leaves a named trace
		expect(attrsOf(records[0])["langfuse.trace.name"]).toBe("Fix the failing test");
		expect(records[0].endMs).toBe(records[0].startMs);
	});

	test("a rename mid-prompt (omp's goal) wins in v3 in either order, also on spans that end later", () => {
		const records: any[] = [];
		const recorder = recorderInto(records);
		recorder.startPrompt(1000, { input: "first" });
		recorder.startTool("tool:1", 1100, { name: "bash" });
		recorder.endTool("tool:1", 1200, { output: "ok" });
		recorder.rename("Ship the release");
		recorder.startTool("tool:2", 1300, { name: "bash" });
		recorder.endTool("tool:2", 1400, { output: "ok" });
		recorder.endPrompt(2000);
		expect(v3TraceName(records, false)).toBe("Ship the release");
		expect(v3TraceName(records, true)).toBe("Ship the release");
		for (const record of new Map(records.map(record => [record.id, record])).values()) expect(attrsOf(record)["langfuse.trace.name"]).toBe("Ship the release");
	});

	test("versions of one span: strictly increasing timestamps, and none loses a field an earlier one had", () => {
		const records: any[] = [];
		const recorder = recorderInto(records);
		recordOnePrompt(recorder);
		recorder.rename("Renamed", { includeLast: true });
		const byId = new Map<string, any[]>();
		for (const record of records) byId.set(record.id, [...(byId.get(record.id) ?? []), record]);
		const root = byId.get(records[0].id)!;
		expect(root.length).toBeGreaterThanOrEqual(3);
		for (const versions of byId.values()) {
			for (let i = 1; i < versions.length; i++) {
				expect(versions[i].emittedMs).toBeGreaterThan(versions[i - 1].emittedMs);
				const before = Object.keys(attrsOf(versions[i - 1]));
				const after = new Set(Object.keys(attrsOf(versions[i])));
				for (const key of before) expect(after.has(key) ? key : `lost ${key}`).toBe(key);
			}
		}
		// legacy ingestion orders by the event timestamp: the same strict order
		const rootEvents = records.flatMap(ingestionEvents).filter((event: any) => event.type === "trace-create");
		const times = rootEvents.map((event: any) => Date.parse(event.timestamp));
		for (let i = 1; i < times.length; i++) expect(times[i]).toBeGreaterThan(times[i - 1]);
	});

	test("grouped by session: a second process re-sends the session root with the same start time and input", () => {
		const first: any[] = [];
		const second: any[] = [];
		const info = { grouping: "session", startedMs: 500 };
		const one = recorderInto(first, info);
		one.startPrompt(1000, { input: "Run two commands" });
		one.endPrompt(2000);
		const two = recorderInto(second, { ...info, firstPrompt: "Run two commands" });
		two.startPrompt(9000, { input: "Thanks, that is all." });
		two.endPrompt(9500);
		const rootOf = (records: any[]) => records.filter(record => !record.parentId);
		const firstRoot = rootOf(first).at(-1);
		for (const root of rootOf(second)) {
			expect(root.id).toBe(firstRoot.id);
			expect(root.startMs).toBe(500);
			expect(root.startMs).toBe(firstRoot.startMs);
			expect(attrsOf(root)["langfuse.trace.input"]).toBe("Run two commands");
			for (const key of Object.keys(attrsOf(firstRoot))) expect(Object.keys(attrsOf(root))).toContain(key);
		}
	});

	test("no langfuse.version (the user's app version) unless LANGFUSE_VERSION; ours is in metadata; no 'unknown' user", () => {
		const records: any[] = [];
		recordOnePrompt(recorderInto(records));
		for (const record of records) expect(attrsOf(record)["langfuse.version"]).toBeUndefined();
		const body = JSON.parse(otlpBody(records.map(encodeSpan)));
		const resource = decodeAttributes(body.resourceSpans[0].resource.attributes);
		expect(resource["service.version"]).toBeUndefined();
		expect(JSON.parse(attrsOf(records.at(-1))["langfuse.trace.metadata"]).tracer).toBe("langfuse.ts 0.1.0");
		for (const event of records.flatMap(ingestionEvents)) expect((event as any).body.version).toBeUndefined();

		const { config } = readConfig({ ...KEYS, LANGFUSE_VERSION: "2.4.1" });
		expect(config.version).toBe("2.4.1");
		const versioned: any[] = [];
		recordOnePrompt(recorderInto(versioned, { version: config.version }));
		for (const record of versioned) expect(attrsOf(record)["langfuse.version"]).toBe("2.4.1");
		expect(readConfig({ ...KEYS }).config.userId).not.toBe("unknown");
		expect(readConfig({ ...KEYS, LANGFUSE_USER_ID: "bob" }).config.userId).toBe("bob");
	});

	test("usage keys are the ones Langfuse's price list prices: cache writes are input_cache_creation", () => {
		// every key of worker/src/constants/default-model-prices.json we use (Langfuse 62751446)
		const priced = new Set(["input", "input_cache_read", "input_cache_creation", "input_cache_creation_5m", "input_cache_creation_1h", "output", "output_reasoning", "total"]);
		const usage = usageDetails({ input: 10, cacheRead: 20, cacheWrite: 30, output: 5, reasoning: 2, total: 67 });
		expect(usage).toEqual({ input: 10, input_cache_read: 20, input_cache_creation: 30, output: 5, output_reasoning: 2, total: 67 });
		for (const key of Object.keys(usage)) expect(priced.has(key)).toBe(true);
		expect(usageDetails({ input: 10, cacheWrite: 30, cacheWrite5m: 10, cacheWrite1h: 20 })).toEqual({ input: 10, input_cache_creation_5m: 10, input_cache_creation_1h: 20 });
	});

	test("legacy ingestion also sends v2's usage object; input is Langfuse's sum (cache included)", () => {
		const records: any[] = [];
		recordOnePrompt(recorderInto(records));
		const generation = records.flatMap(ingestionEvents).find((event: any) => event.type === "generation-create") as any;
		expect(generation.body.usage).toEqual({ input: 1200, output: 50, total: 1250, unit: "TOKENS", totalCost: 0.004 });
		// v3 reads both, usageDetails winning key by key: so it names input and output itself
		expect(generation.body.usageDetails).toEqual({ input: 1000, input_cache_read: 200, output: 50, total: 1250 });
		expect(generation.body.costDetails).toEqual({ total: 0.004 });
	});

	test("a Langfuse v2 (its schema only: unknown keys dropped) still stores tokens and cost", async () => {
		const { startReceiver } = await import("./test/support/receiver.ts");
		const receiver = await startReceiver({ mode: "v2" });
		try {
			const exporter = new Exporter(
				config({ LANGFUSE_HOST: receiver.url, LANGFUSE_TRANSPORT: "ingestion" }),
				noRedact,
				new Logger(noRedact, false, () => {}),
			);
			const records: any[] = [];
			const recorder = recorderInto(records);
			recorder.startPrompt(1000, { input: "x" });
			recorder.startGeneration("llm", 1100, { model: "mock-model" });
			recorder.endGeneration("llm", 1200, {
				usage: usageDetails({ input: 100, cacheRead: 400, cacheWrite: 50, output: 20, total: 570 }),
				cost: { input: 0.0003, input_cache_read: 0.00012, input_cache_creation: 0.0001875, output: 0.0003, total: 0.0009075 },
			});
			recorder.endPrompt(1300);
			for (const record of records) exporter.enqueue(record);
			await exporter.flush();
			exporter.stop();
			const stored = receiver.events.find(event => event.type === "generation-create")!;
			expect(stored.body.usageDetails).toBeUndefined();
			expect(stored.body.usage).toEqual({ input: 550, output: 20, total: 570, unit: "TOKENS", inputCost: 0.0006075, outputCost: 0.0003, totalCost: 0.0009075 });
		} finally {
			await receiver.close();
		}
	});

	// ── chat: one conversion for every host's shapes ──
	const toolCallsOf = (messages: any[]) => messages.flatMap(message => message.tool_calls ?? []);
	const prepared = (request: unknown) => JSON.parse(prepareChat(request, prepareOptions, new ChatCache()).json);

	test("OpenAI chat payload (omp/pi): ChatML with tool calls, tool results and the tools offered", () => {
		const chat = prepared(
			chatRequest({
				model: "m",
				messages: [
					{ role: "system", content: "Be brief." },
					{ role: "user", content: [{ type: "text", text: "Run it" }, { type: "image_url", image_url: { url: `data:image/png;base64,${"A".repeat(4000)}` } }] },
					{ role: "assistant", content: null, tool_calls: [{ id: "c1", type: "function", function: { name: "bash", arguments: '{"command":"ls"}' } }] },
					{ role: "tool", tool_call_id: "c1", content: "a.txt" },
				],
				tools: [{ type: "function", function: { name: "bash", description: "Run a command", parameters: { type: "object" } } }],
			}),
		);
		expect(chat.messages.map((m: any) => m.role)).toEqual(["system", "user", "assistant", "tool"]);
		expect(chat.messages[1].content).toMatch(/^Run it\n\[image image\/png 2\.9 KB base64 omitted\]$/);
		expect(toolCallsOf(chat.messages)).toEqual([{ id: "c1", type: "function", function: { name: "bash", arguments: '{"command":"ls"}' } }]);
		expect(chat.messages[3]).toEqual({ role: "tool", tool_call_id: "c1", content: "a.txt" });
		expect(chat.tools).toEqual([{ type: "function", function: { name: "bash", description: "Run a command", parameters: { type: "object" } } }]);
	});

	test("OpenAI Responses, Anthropic and Google payloads, pi's own messages, OpenCode parts: the same ChatML", () => {
		const expectCallAndResult = (chat: any, id: string) => {
			expect(toolCallsOf(chat.messages).map((call: any) => [call.id, call.function.name, JSON.parse(call.function.arguments)])).toEqual([[id, "bash", { command: "ls" }]]);
			expect(chat.messages.find((m: any) => m.role === "tool")).toMatchObject({ tool_call_id: id, content: "a.txt" });
			expect(chat.messages[0]).toEqual({ role: "system", content: "Be brief." });
		};
		const responses = prepared(
			chatRequest({
				instructions: "Be brief.",
				input: [
					{ role: "user", content: [{ type: "input_text", text: "Run it" }] },
					{ type: "reasoning", summary: [{ type: "summary_text", text: "thinking" }] },
					{ type: "function_call", call_id: "c1", name: "bash", arguments: '{"command":"ls"}' },
					{ type: "function_call_output", call_id: "c1", output: "a.txt" },
				],
				tools: [{ type: "function", name: "bash", description: "Run", parameters: { type: "object" } }],
			}),
		);
		expectCallAndResult(responses, "c1");
		expect(responses.messages[2].thinking).toEqual([{ type: "thinking", content: "thinking" }]);
		expect(responses.tools[0].function.name).toBe("bash");

		const anthropic = prepared(
			chatRequest({
				system: [{ type: "text", text: "Be brief." }],
				messages: [
					{ role: "user", content: "Run it" },
					{ role: "assistant", content: [{ type: "thinking", thinking: "hm" }, { type: "tool_use", id: "tu1", name: "bash", input: { command: "ls" } }] },
					{ role: "user", content: [{ type: "tool_result", tool_use_id: "tu1", content: [{ type: "text", text: "a.txt" }] }] },
				],
				tools: [{ name: "bash", description: "Run", input_schema: { type: "object" } }],
			}),
		);
		expectCallAndResult(anthropic, "tu1");
		expect(anthropic.tools).toEqual([{ type: "function", function: { name: "bash", description: "Run", parameters: { type: "object" } } }]);

		const google = prepared(
			chatRequest({
				systemInstruction: { parts: [{ text: "Be brief." }] },
				contents: [
					{ role: "user", parts: [{ text: "Run it" }] },
					{ role: "model", parts: [{ functionCall: { id: "g1", name: "bash", args: { command: "ls" } } }] },
					{ role: "user", parts: [{ functionResponse: { id: "g1", name: "bash", response: { output: "a.txt" } } }] },
				],
				tools: [{ functionDeclarations: [{ name: "bash", description: "Run", parameters: { type: "object" } }] }],
			}),
		);
		expectCallAndResult(google, "g1");
		expect(google.tools[0].function.name).toBe("bash");

		const pi = prepared(
			new (internals as any).ChatRequest(
				[
					{ role: "user", content: "Run it" },
					{ role: "assistant", content: [{ type: "text", text: "ok" }, { type: "toolCall", id: "p1", name: "bash", arguments: { command: "ls" } }] },
					{ role: "toolResult", toolCallId: "p1", toolName: "bash", content: [{ type: "text", text: "a.txt" }], isError: false },
				],
				undefined,
				"Be brief.",
			),
		);
		expectCallAndResult(pi, "p1");

		const opencode = prepared(
			new (internals as any).ChatRequest(
				[
					{ info: { role: "user" }, parts: [{ type: "text", text: "Run it" }] },
					{ info: { role: "assistant" }, parts: [{ type: "text", text: "ok" }, { type: "tool", callID: "o1", tool: "bash", state: { status: "completed", input: { command: "ls" }, output: "a.txt" } }] },
				],
				[{ name: "bash", description: "Run" }],
				["Be brief."],
			),
		);
		expectCallAndResult(opencode, "o1");
		expect(opencode.tools).toEqual([{ type: "function", function: { name: "bash", description: "Run" } }]);

		// Codex / Claude: ChatML as it is
		const chatml = prepared(
			new (internals as any).ChatRequest(
				[
					{ role: "user", content: "Run it" },
					{ role: "assistant", content: null, tool_calls: [{ id: "x1", type: "function", function: { name: "bash", arguments: '{"command":"ls"}' } }] },
					{ role: "tool", tool_call_id: "x1", content: "a.txt" },
				],
				undefined,
				"Be brief.",
			),
		);
		expectCallAndResult(chatml, "x1");
	});

	test("the answer is one assistant message: text, reasoning and tool calls", () => {
		expect(chatOutput([{ type: "text", text: "Done." }])).toBe("Done.");
		expect(chatOutput([{ type: "thinking", thinking: "why" }, { type: "text", text: "Running" }, { type: "toolCall", id: "p1", name: "bash", arguments: { command: "ls" } }])).toEqual({
			role: "assistant",
			content: "Running",
			thinking: [{ type: "thinking", content: "why" }],
			tool_calls: [{ id: "p1", type: "function", function: { name: "bash", arguments: '{"command":"ls"}' } }],
		});
		expect(chatMessagesOf({ role: "assistant", content: [{ type: "image", data: "QUJD", mimeType: "image/png" }] })[0].content).toMatch(/^\[image image\/png/);
	});

	test("a huge history stays under Langfuse's 300 KB parse limit: system prompt and the latest messages whole, the middle one marker", () => {
		const messages = [{ role: "system", content: "S".repeat(5000) }];
		for (let i = 0; i < 200; i++) messages.push({ role: i % 2 ? "assistant" : "user", content: `${i} ${"x".repeat(5000)}` });
		const { json } = prepareChat(chatRequest({ messages }), prepareOptions, new ChatCache());
		expect(json.length).toBeLessThan(300_000);
		const chat = JSON.parse(json);
		expect(chat.messages[0].content).toBe("S".repeat(5000));
		expect(chat.messages[1]).toMatchObject({ role: "system" });
		expect(chat.messages[1].content).toMatch(/^\[langfuse\.ts: \d+ earlier message\(s\) left out/);
		expect(chat.messages.at(-1).content).toStartWith("199 ");
		const kept = chat.messages.length - 2;
		expect(Number(chat.messages[1].content.match(/(\d+) earlier/)[1])).toBe(200 - kept);

		// even when one message alone is huge and LANGFUSE_MAX_FIELD_CHARS allows it
		const huge = prepareChat(
			chatRequest({ system: "S".repeat(900_000), messages: [{ role: "user", content: "u".repeat(900_000) }], tools: [{ name: "t", description: "d".repeat(900_000) }] }),
			{ ...prepareOptions, maxFieldChars: 1_000_000 },
			new ChatCache(),
		).json;
		expect(huge.length).toBeLessThan(300_000);
		expect(JSON.parse(huge).messages.map((m: any) => m.role)).toEqual(["system", "user"]);
	});

	test("linear history: each message is sanitized and encoded once, however many generations repeat it", () => {
		let redactions = 0;
		const options = { ...prepareOptions, redact: (text: string) => (redactions++, text) };
		const cache = new ChatCache();
		const history: any[] = [{ role: "user", content: "start" }];
		const tools = [{ type: "function", function: { name: "bash", description: "Run", parameters: {} } }];
		const turns = 200;
		for (let turn = 0; turn < turns; turn++) {
			// the host rebuilds its payload each call: new objects, same content
			const chat = JSON.parse(prepareChat(chatRequest({ system: "sys", messages: structuredClone(history), tools }), options, cache).json);
			expect(chat.messages).toHaveLength(history.length + 1);
			history.push({ role: turn % 2 ? "user" : "assistant", content: `message ${turn}` });
		}
		// one miss per distinct message (+ system prompt + tool list), not one per message per call
		expect(cache.misses).toBe(turns + 2);
		expect(redactions).toBeLessThan(turns * 3);
		// past the display limit a call looks only at what it keeps: the cost of a call stops growing
		const long = Array.from({ length: 2000 }, (_, i) => ({ role: i % 2 ? "assistant" : "user", content: `${i} ${"y".repeat(5000)}` }));
		const before = cache.hits + cache.misses;
		const kept = JSON.parse(prepareChat(chatRequest({ messages: long }), options, cache).json).messages.length;
		expect(kept).toBeLessThan(60);
		expect(cache.hits + cache.misses - before).toBe(kept); // kept - marker + the first one that did not fit
	});

	test("a long tool output is redacted once: for the tool's own observation and, a fresh copy, in the next LLM call's input", () => {
		const redacted: number[] = [];
		const options = { ...prepareOptions, redact: (text: string) => (redacted.push(text.length), text), texts: new SanitizedTexts(), chatCache: new ChatCache() };
		const long = (cut: boolean) => `${"npm test output line\n".repeat(cut ? 10_000 : 2_000)}done`; // 210 kB (cut at 64 kB) and 42 kB
		for (const cut of [true, false]) {
			redacted.length = 0;
			const output = long(cut);
			const tool = prepareRecord({ type: "tool", name: "bash", traceId: "a".repeat(32), id: "b".repeat(16), startMs: 1, endMs: 2, sessionId: "s", emissionId: "e", output }, options);
			const chat = prepareChat(chatRequest({ messages: [{ role: "user", content: "run the tests" }, { role: "tool", tool_call_id: "c1", content: long(cut) }] }), options, options.chatCache);
			expect(JSON.parse(chat.json).messages[1].content).toBe(tool.output);
			// one pass over the text (in two halves when it is cut), however many places it appears in
			expect(redacted.filter(length => length > 1000).reduce((sum, length) => sum + length, 0)).toBeLessThanOrEqual(output.length);
		}
	});

	test("a call reuses the previous call's messages only where the content is the same: an edited message, or one changed in place, is encoded again", () => {
		const cache = new ChatCache();
		const contents = (messages: any[]) => JSON.parse(prepareChat(chatRequest({ messages }), prepareOptions, cache).json).messages.map((m: any) => m.content);
		const history: any[] = [
			{ role: "user", content: "first" },
			{ role: "assistant", content: "answer" },
			{ role: "user", content: "second" },
		];
		expect(contents(structuredClone(history))).toEqual(["first", "answer", "second"]);
		// the host rewrote a message in the middle (a pruned tool output, an edit): that one is new
		history[1].content = "answer, pruned";
		history.push({ role: "assistant", content: "more" });
		expect(contents(structuredClone(history))).toEqual(["first", "answer, pruned", "second", "more"]);
		// the same message objects passed again after an in-place change: never trusted as unchanged
		const shared = structuredClone(history);
		expect(contents(shared)).toEqual(["first", "answer, pruned", "second", "more"]);
		shared[2].content = "second, changed in place";
		expect(contents([...shared])).toEqual(["first", "answer, pruned", "second, changed in place", "more"]);
	});

	test("a prepared chat input goes into the span exactly as JSON.stringify would escape it: same bytes as the plain text", () => {
		const awkward = 'quotes " and \\ backslash, \n\t\r\u0001 controls, \u2028 separators, emoji 😀, lone \ud800 surrogate, ✓ and ü';
		const long = `${"log line ✓ \"x\"\n".repeat(2000)}end`; // longer than the digest threshold
		const messages: any[] = [{ role: "system", content: awkward }];
		for (let i = 0; i < 30; i++) messages.push({ role: i % 2 ? "assistant" : "user", content: i % 5 === 4 ? long + i : `${awkward} ${i}` });
		const cache = new ChatCache();
		const tools = [{ type: "function", function: { name: "bash", description: awkward, parameters: { type: "object" } } }];
		for (let round = 0; round < 2; round++) {
			// round 1 comes from the cache: the same bytes
			const prepared = prepareChat(chatRequest({ messages: structuredClone(messages), tools }), prepareOptions, cache);
			const record: any = { traceId: "a".repeat(32), id: "b".repeat(16), type: "generation", name: "llm", startMs: 1, endMs: 2, sessionId: "s", emissionId: "e", input: prepared, output: prepared, trace: { name: "t", input: prepared, tags: [], metadata: {} } };
			const plain = { ...record, input: prepared.json, output: prepared.json, trace: { ...record.trace, input: prepared.json } };
			expect(encodeSpan(record)).toBe(encodeSpan(plain));
			expect(JSON.parse(prepared.json).messages).toHaveLength(31);
			expect(JSON.parse(prepared.json).messages[0].content).toBe(awkward);
			expect(prepared.escaped).toBe(JSON.stringify(prepared.json).slice(1, -1));
		}
		expect(cache.misses).toBe(32); // 31 messages + the tool list, each once

		// a long text enters the key as NUL + its number: a short text that looks like that is still itself
		const fresh = new ChatCache();
		const lookalikes = [{ role: "user", content: "z".repeat(5000) }, { role: "user", content: "\u00001" }, { role: "user", content: "\u0000\u00001" }];
		const chat = JSON.parse(prepareChat(chatRequest({ messages: lookalikes }), prepareOptions, fresh).json);
		expect(chat.messages.map((m: any) => m.content)).toEqual(["z".repeat(5000), "\u00001", "\u0000\u00001"]);
		expect(fresh.misses).toBe(3);
	});

	test("recorded omp and pi runs: every generation is chat, tool calls recognised, tool definitions present", async () => {
		for (const host of ["omp", "pi"]) {
			const fake = fakeLangfuse();
			const runtime = createRuntime(
				{ ...KEYS, LANGFUSE_HOST: "http://langfuse.test", LANGFUSE_SPOOL_DIR: path.join(tmp, `spool-${host}`), LANGFUSE_FLUSH_MS: "600000" },
				{ fetch: fake.fetch, write: () => {}, exitHook: false },
			);
			await replay(readRecording(path.join(import.meta.dir, "test/fixtures", `${host}-two-tools.jsonl`)), pi => attachPiHost(pi, runtime));
			await runtime.exporter!.flush();
			runtime.exporter!.stop();
			const generations = fake.spans().filter((span: any) => span.attrs["langfuse.observation.type"] === "generation");
			expect(generations).toHaveLength(2);
			const [first, second] = generations.sort((a: any, b: any) => (BigInt(a.startTimeUnixNano) < BigInt(b.startTimeUnixNano) ? -1 : 1));
			for (const generation of [first, second]) {
				const input = JSON.parse(generation.attrs["langfuse.observation.input"]);
				expect(input.messages[0].role).toBe("system");
				expect(input.tools.map((tool: any) => tool.function.name)).toContain("bash");
			}
			const output = JSON.parse(first.attrs["langfuse.observation.output"]);
			expect(output.tool_calls.map((call: any) => call.function.name)).toEqual(["bash", "bash"]);
			const secondInput = JSON.parse(second.attrs["langfuse.observation.input"]).messages;
			const calls = secondInput.flatMap((m: any) => m.tool_calls ?? []).map((call: any) => call.id);
			expect(secondInput.filter((m: any) => m.role === "tool").map((m: any) => m.tool_call_id).sort()).toEqual(calls.sort());
		}
	});
});
