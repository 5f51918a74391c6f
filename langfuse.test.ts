/**
 * langfuse.ts, specified by what a user would notice. Unit and contract tests here; the real hosts
 * are driven end to end in test/*.e2e.test.ts.
 */
import { afterEach, beforeEach, describe, expect, test } from "bun:test";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import langfuse, { type Internals } from "./langfuse.ts";
import { readAgentSession, sumUsage } from "./test/support/hosts.ts";
import { decodeAttributes } from "./test/support/receiver.ts";
import { readRecording, replay } from "./test/support/replay.ts";

const internals = (langfuse as unknown as { internals: Internals }).internals;
const { readConfig, sanitize, prepareRecord, encodeSpan, otlpBody, ingestionEvents, SessionRecorder, Exporter, Logger, createRuntime, attachPiHost } =
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

type Answer = number | { status: number; body?: unknown; headers?: Record<string, string> } | "network-error";

function fakeLangfuse(script: Answer[] = []) {
	const requests: { url: string; body: any; headers: Record<string, string> }[] = [];
	const fetch = async (url: string, init: RequestInit) => {
		const body = JSON.parse(String(init.body));
		requests.push({ url, body, headers: init.headers as Record<string, string> });
		const answer = script.length ? script.shift()! : 200;
		if (answer === "network-error") throw new TypeError("fetch failed");
		const { status, body: answerBody, headers } = typeof answer === "number" ? { status: answer, body: {}, headers: {} } : answer;
		return new Response(JSON.stringify(answerBody ?? {}), { status, headers });
	};
	const spans = () =>
		requests
			.filter(request => request.url.endsWith("/otel/v1/traces"))
			.flatMap(request => request.body.resourceSpans.flatMap((rs: any) => rs.scopeSpans.flatMap((ss: any) => ss.spans)))
			.map((span: any) => ({ ...span, attrs: decodeAttributes(span.attributes) as Record<string, any> }));
	return { fetch, requests, spans };
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

/** One prompt: a turn with an LLM call that asks for a tool, the tool, then the answer. Five records:
 *  the trace announced, the LLM call, the tool, the turn, the trace complete. */
const RECORDS_PER_PROMPT = 5;

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
		expect(JSON.parse(root["langfuse.trace.metadata"].stringValue)).toEqual({ host: "omp" });
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
		expect(langfuseFake.spans()).toHaveLength(RECORDS_PER_PROMPT);
		expect(langfuseFake.requests[0].url).toBe("http://langfuse.test/api/public/otel/v1/traces");
		expect(langfuseFake.requests[0].headers.Authorization).toBe(`Basic ${Buffer.from(`${KEYS.LANGFUSE_PUBLIC_KEY}:${KEYS.LANGFUSE_SECRET_KEY}`).toString("base64")}`);
		expect((await exporter.spool.stats()).files).toBe(0);
		expect(exporter.status).toMatchObject({ sentSpans: RECORDS_PER_PROMPT, queued: 0, waitingBatches: 0 });
	});

	test("reaching LANGFUSE_MAX_QUEUE flushes without waiting for the timer", async () => {
		const langfuseFake = fakeLangfuse();
		const { exporter } = exporterWith(langfuseFake, { LANGFUSE_MAX_QUEUE: "5" });
		for (const record of someRecords()) exporter.enqueue(record);
		// no flush() and a 600 s timer: only the queue threshold can have sent these
		await until(() => langfuseFake.spans().length >= 5);
		expect(langfuseFake.spans().length).toBeGreaterThanOrEqual(5);
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
		expect(exporter.status.sentSpans).toBe(RECORDS_PER_PROMPT);
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

	test("400 drops the batch with a line; it would never succeed", async () => {
		const { exporter, lines } = exporterWith(fakeLangfuse([{ status: 400, body: { message: "invalid span id" } }]));
		for (const record of someRecords()) exporter.enqueue(record);
		await exporter.flush();
		expect(exporter.status.droppedSpans).toBe(RECORDS_PER_PROMPT);
		expect(lines.join("\n")).toContain("HTTP 400");
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

	test("a 20 MB tool output goes out in requests under 3.5 MB, shrunk with a marker, not dropped", async () => {
		const langfuseFake = fakeLangfuse();
		const { exporter } = exporterWith(langfuseFake, { LANGFUSE_MAX_FIELD_CHARS: "1000000" });
		const records: any[] = [];
		const recorder = recorderInto(records);
		recorder.startPrompt(1, { input: "cat big.log" });
		for (let i = 0; i < 20; i++) {
			recorder.startTool(`t${i}`, 2, { name: "bash", input: { command: "cat big.log" } });
			recorder.endTool(`t${i}`, 3, { output: Array.from({ length: 100 }, () => "line ".repeat(2000)) });
		}
		recorder.endPrompt(4);
		for (const record of records) exporter.enqueue(record);
		await exporter.flush();
		expect(langfuseFake.spans()).toHaveLength(records.length);
		for (const request of langfuseFake.requests) expect(JSON.stringify(request.body).length).toBeLessThan(3_500_000);
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
		const events: any[] = records.flatMap(ingestionEvents);
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
		expect(spans).toHaveLength(2 * RECORDS_PER_PROMPT);
		expect(spans[0].attrs["session.id"]).toBe("older");
		expect(new Set(spans.map((s: any) => `${s.spanId}:${s.endTimeUnixNano}`)).size).toBe(2 * RECORDS_PER_PROMPT);
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
		expect(ids).toHaveLength(4 * RECORDS_PER_PROMPT);
		expect(new Set(ids).size).toBe(4 * RECORDS_PER_PROMPT);
	});

	test("a corrupt or truncated spool line is skipped, the rest delivered", async () => {
		const dir = path.join(tmp, "spool");
		fs.mkdirSync(dir, { recursive: true });
		const good = someRecords().map(record => JSON.stringify(record));
		fs.writeFileSync(path.join(dir, "00001700000000000-1-abcdef01.jsonl"), `${good[0]}\n{"traceId": "trunc\n${good[1]}\n`, { mode: 0o600 });
		const langfuseFake = fakeLangfuse();
		const { exporter } = exporterWith(langfuseFake);
		exporter.start();
		await Bun.sleep(100);
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

	test("shutdown never takes longer than its budget, even against a black hole", async () => {
		const blackHole = (_url: string, init: RequestInit) =>
			new Promise<Response>((_resolve, reject) => init.signal?.addEventListener("abort", () => reject(new Error("aborted"))));
		const exporter = new Exporter(config(), noRedact, new Logger(noRedact, false, () => {}), { fetch: blackHole });
		for (const record of someRecords()) exporter.enqueue(record);
		const started = Date.now();
		await exporter.shutdown(500);
		expect(Date.now() - started).toBeLessThan(800);
		expect((await exporter.spool.stats()).files).toBe(1);
	});
});

// ════════════════════════════════════════════════════════════════════════════════════════════════
describe("omp/pi adapter: the host is never hurt", () => {
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
